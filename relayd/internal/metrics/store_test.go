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

// The wrapper times each append from Submit to its commit, on both stores.
func TestStoreWrapperTimesAppends(t *testing.T) {
	ctx := context.Background()
	sq, err := store.Open(ctx, t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	for _, inner := range []store.Store{store.NewMemory(), sq} {
		m := New()
		st := m.Store(inner)
		msg := store.Message{ID: "01a", From: "CC-1", To: []string{"CC-2"}, Body: "x", TS: time.Now()}
		if _, err := store.AppendWait(ctx, st, msg, []string{"CC-2"}, 0); err != nil {
			t.Fatal(err)
		}
		if n := appendCount(t, m); n != 1 {
			t.Fatalf("%d appends timed, want 1", n)
		}
		if un, _ := st.Unacked(ctx, "CC-2"); un != 1 {
			t.Fatalf("the store holds %d messages for CC-2, want 1", un)
		}
	}
}
