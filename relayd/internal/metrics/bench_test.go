package metrics

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// BenchmarkScrape is one GET /metrics of a relay whose SQLite store knows
// 1000 sessions with mail waiting for each: the cost a 15 s scrape adds.
func BenchmarkScrape(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for i := range 1000 {
		id := fmt.Sprintf("CC-%d", i)
		st.Touch(ctx, store.SessionInfo{ID: id, FirstSeen: time.Now(), LastSeen: time.Now()})
		store.AppendWait(ctx, st, store.Message{ID: fmt.Sprintf("m%04d", i), From: "CC-0", To: []string{id}, Body: "x", TS: time.Now()}, []string{id}, 0)
	}
	m := New()
	if err := m.Watch(Source{Version: "bench", Started: time.Now(), Hub: hub.New(hub.Options{Store: m.Store(st)})}); err != nil {
		b.Fatal(err)
	}
	h := m.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
