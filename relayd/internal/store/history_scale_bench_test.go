package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkHistoryAtScale reads history out of the default store (the
// journal, whose messages are in memory) holding 200 000 messages in one
// mailbox: the newest page, as an agent's relay_history asks, and a page of
// one rare peer's messages, which looks at them all. Meanwhile another
// goroutine takes the store's lock over and over, as senders do, and the
// longest it waited is reported (lock-wait-max-µs): a scan must not stall
// the relay's sends for its whole length.
func BenchmarkHistoryAtScale(b *testing.B) {
	s := openJournal(b, b.TempDir(), JournalOptions{})
	ctx := context.Background()
	const n, rareEvery = 200_000, 1000
	for i := range n {
		m := benchMsg(uint64(i), "r")
		if i%rareEvery == 0 {
			m.From = "rare"
		}
		if _, err := AppendWait(ctx, s, m, []string{"r"}, 0); err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range []struct {
		name string
		q    HistoryQuery
		want int
	}{
		{"newest", HistoryQuery{Client: "r", Limit: 50}, 50},
		{"rare-peer", HistoryQuery{Client: "r", With: "rare", Limit: 500}, n / rareEvery},
	} {
		b.Run(q.name, func(b *testing.B) {
			var stop atomic.Bool
			var worst time.Duration
			var wg sync.WaitGroup
			wg.Go(func() {
				for !stop.Load() {
					t0 := time.Now()
					s.Unacked(ctx, "r")
					worst = max(worst, time.Since(t0))
					time.Sleep(50 * time.Microsecond)
				}
			})
			b.ResetTimer()
			for range b.N {
				page, _, err := s.History(ctx, q.q)
				if err != nil || len(page) != q.want {
					b.Fatalf("History = %d messages, %v; want %d", len(page), err, q.want)
				}
			}
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
			b.ReportMetric(float64(worst.Microseconds()), "lock-wait-max-µs")
		})
	}
}
