package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

func appendCount(t *testing.T, m *Metrics) uint64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "relayd_store_append_seconds" {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no relayd_store_append_seconds")
	return 0
}

// The wrapper times appends, sync and pipelined, and hides no capability
// of the store it wraps: the hub may use Pipeliner when the store has it.
func TestStoreWrapperTimesAppends(t *testing.T) {
	ctx := context.Background()
	m := New()
	if _, ok := m.Store(store.NewMemory()).(store.Pipeliner); ok {
		t.Error("a wrapped memory store claims to pipeline")
	}
	sq, err := store.Open(ctx, t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	st := m.Store(sq)
	p, ok := st.(store.Pipeliner)
	if !ok {
		t.Fatal("the wrapped SQLite store lost AppendAsync")
	}
	msg := store.Message{ID: "01a", From: "CC-1", To: []string{"CC-2"}, Body: "x", TS: time.Now()}
	if _, err := st.Append(ctx, msg, []string{"CC-2"}, 0); err != nil {
		t.Fatal(err)
	}
	if n := appendCount(t, m); n != 1 {
		t.Fatalf("%d appends timed after Append, want 1", n)
	}
	done := make(chan error, 1)
	msg.ID = "01b"
	p.AppendAsync(msg, []string{"CC-2"}, 0, nil, func(_ []store.Slot, _ *store.Sent, err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("AppendAsync never completed")
	}
	if n := appendCount(t, m); n != 2 {
		t.Fatalf("%d appends timed after AppendAsync, want 2", n)
	}
	if un, _ := st.Unacked(ctx, "CC-2"); un != 2 {
		t.Fatalf("the store holds %d messages for CC-2, want 2", un)
	}
}
