package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

func TestInterval(t *testing.T) {
	for _, c := range []struct {
		keep, every, want time.Duration
	}{
		{7 * 24 * time.Hour, 0, time.Hour},
		{time.Hour, 0, 6 * time.Minute},
		{time.Second, 0, time.Second},
		{time.Hour, time.Minute, time.Minute},
	} {
		k := &Keeper{Keep: c.keep, Every: c.every}
		if got := k.Interval(); got != c.want {
			t.Errorf("Interval(keep %s, every %s) = %s, want %s", c.keep, c.every, got, c.want)
		}
	}
}

func appendAt(t *testing.T, s store.Store, n int, to string) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%020d-%04d", time.Now().UnixNano(), i)
		if _, err := store.AppendWait(context.Background(), s, store.Message{ID: id, From: "a", To: []string{to}, Body: "x", TS: time.Now()}, []string{to}, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// The memory store is swept too: mail older than the retention goes, is
// counted and logged; mail younger stays.
func TestRunPrunesMemoryStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := store.NewMemory()
		var logs testkit.Buffer
		k := &Keeper{Store: st, Keep: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		appendAt(t, st, 3, "b") // t0
		go func() { k.Run(ctx); close(done) }()
		synctest.Wait()
		if k.Sweeps() != 1 || k.Dropped() != 0 {
			t.Fatalf("after the first sweep: sweeps %d dropped %d, want 1 and 0", k.Sweeps(), k.Dropped())
		}
		time.Sleep(30 * time.Minute)
		appendAt(t, st, 2, "b") // t0+30m
		// At t0+66m (the 11th sweep) the first three have expired.
		time.Sleep(36*time.Minute + time.Second)
		synctest.Wait()
		if got := k.Dropped(); got != 3 {
			t.Fatalf("dropped %d after 66 min, want 3", got)
		}
		if n, _ := st.Unacked(ctx, "b"); n != 2 {
			t.Errorf("b holds %d unread, want the 2 younger ones", n)
		}
		time.Sleep(31 * time.Minute)
		synctest.Wait()
		if got := k.Dropped(); got != 5 {
			t.Errorf("dropped %d after 97 min, want 5", got)
		}
		cancel()
		<-done
		if !strings.Contains(logs.String(), "dropped=3") || !strings.Contains(logs.String(), "dropped_total=5") {
			t.Errorf("log does not count what was dropped:\n%s", logs.String())
		}
	})
}

type failingPruner struct{ err error }

func (f failingPruner) Prune(context.Context, time.Time) (int, error) { return 0, f.err }

// A sweep that fails is logged and retried at the next tick; Run goes on.
func TestRunSurvivesFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs testkit.Buffer
		k := &Keeper{Store: failingPruner{errors.New("disk I/O error")}, Keep: 10 * time.Second,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { k.Run(ctx); close(done) }()
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		if k.Failed() != 3 {
			t.Errorf("failed sweeps = %d after 2.5 s with a 1 s interval, want 3", k.Failed())
		}
		cancel()
		<-done
		if !strings.Contains(logs.String(), "disk I/O error") {
			t.Errorf("failure not logged:\n%s", logs.String())
		}
	})
}

func TestRunForeverIsNoop(t *testing.T) {
	k := &Keeper{Store: failingPruner{}, Keep: 0}
	k.Run(context.Background()) // returns at once
	if k.Sweeps() != 0 {
		t.Errorf("sweeps = %d with retention off", k.Sweeps())
	}
}
