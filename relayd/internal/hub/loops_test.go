package hub

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
)

// The loop watch judges by shape: count, pace and share of replies. These
// cases run on a fake clock; TestLoopWarning (relayd) and
// TestE2ELoopNudge (relay-mcp) run the same through real processes.
func TestLoopWatchShapes(t *testing.T) {
	rate := ratelimit.Rate{N: 20, Per: 10 * time.Minute}
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	type msg struct{ from, to, replyTo, thread string }
	cases := []struct {
		name   string
		every  time.Duration
		msgs   func(k int) msg // the k-th message of the exchange
		n      int
		warnAt int // index of the first warned message; -1 for none
	}{
		{"orchestrator: tasks and their answers", 36 * time.Second, func(k int) msg {
			if k%2 == 0 {
				return msg{"ORCH", "W1", "", fmt.Sprint("task-", k/2)}
			}
			return msg{"W1", "ORCH", "m", fmt.Sprint("task-", k/2)}
		}, 200, -1},
		{"orchestrator: tasks in one thread", 18 * time.Second, func(k int) msg {
			if k%2 == 0 {
				return msg{"ORCH", "W1", "", ""}
			}
			return msg{"W1", "ORCH", "m", "tasks"}
		}, 200, -1},
		{"one-way stream of replies", time.Second, func(k int) msg { return msg{"A", "B", "m", ""} }, 100, -1},
		{"two agents replying to each other", 20 * time.Second, func(k int) msg {
			if k == 0 {
				return msg{"A", "B", "", ""}
			}
			if k%2 == 0 {
				return msg{"A", "B", "m", ""}
			}
			return msg{"B", "A", "m", ""}
		}, 40, 19},
		{"answering in the other side's thread", 20 * time.Second, func(k int) msg {
			if k%2 == 0 {
				return msg{"A", "B", "", "auth"}
			}
			return msg{"B", "A", "", "auth"}
		}, 40, 19},
		{"the same, slower than the window", 40 * time.Second, func(k int) msg {
			if k%2 == 0 {
				return msg{"A", "B", "m", ""}
			}
			return msg{"B", "A", "m", ""}
		}, 60, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newLoopWatch(rate)
			first := -1
			for k := range c.n {
				m := c.msgs(k)
				warn := w.note(m.from, []string{m.to}, m.replyTo, m.thread, t0.Add(time.Duration(k)*c.every))
				if warn != "" && first < 0 {
					first = k
					if !strings.Contains(warn, m.from+" and "+m.to) || !strings.Contains(warn, "20 messages") {
						t.Errorf("warning %q does not name the pair and the count", warn)
					}
				}
				if warn == "" && first >= 0 && c.warnAt >= 0 {
					t.Errorf("message %d: no warning after the first at %d while the loop goes on", k, first)
				}
			}
			if first != c.warnAt {
				t.Fatalf("first warning at message %d, want %d", first, c.warnAt)
			}
		})
	}
}

// A pair silent for a whole window is forgotten, so memory follows the
// pairs that talk; a nil watch (--loop-warn 0) warns about nothing.
func TestLoopWatchForgets(t *testing.T) {
	w := newLoopWatch(ratelimit.Rate{N: 3, Per: time.Minute})
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	for i := range 50 {
		w.note(fmt.Sprint("A", i), []string{"B", "C"}, "", "", t0)
	}
	if n := w.len(); n != 100 {
		t.Fatalf("%d pairs remembered, want 100", n)
	}
	w.note("X", []string{"Y"}, "", "", t0.Add(2*time.Minute))
	if n := w.len(); n != 1 {
		t.Fatalf("%d pairs remembered after a quiet window, want 1", n)
	}
	var off *loopWatch = newLoopWatch(ratelimit.Rate{})
	if off != nil || off.note("A", []string{"B"}, "m", "", t0) != "" || off.len() != 0 {
		t.Fatal("an unlimited rate must watch nothing")
	}
}

// The watch is on every send's path: one pair, a full ring, warning each
// time (the costliest case).
func BenchmarkLoopWatchNote(b *testing.B) {
	w := newLoopWatch(ratelimit.Rate{N: 20, Per: 10 * time.Minute})
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	ids := []string{"CC-1", "CC-2"}
	b.ReportAllocs()
	for i := range b.N {
		if w.note(ids[i%2], ids[1-i%2:2-i%2], "m", "", t0.Add(time.Duration(i)*time.Millisecond)) == "" && i >= 20 {
			b.Fatal("no warning in a loop")
		}
	}
}
