package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAtScale asks the default store (the journal, whose messages are
// in memory) holding 200 000 messages in one mailbox what agents and the
// console ask: the newest history page (relay_history), a page of one rare
// peer's messages (which looks at them all), the receipts of a few sends
// (relay_status), a read report (relay_receive) and the unread counts
// (relay_peers), and the retention sweep with nothing old enough to go (an
// hour's, which still walks every message). Meanwhile another goroutine
// takes the store's lock over and over, as senders do, and the longest it
// waited is reported (lock-wait-max-µs): none may stall the relay's sends
// for long.
func BenchmarkAtScale(b *testing.B) {
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
	recent := []string{benchMsg(n-3, "r").ID, benchMsg(n-2, "r").ID, benchMsg(n-1, "r").ID}
	history := func(q HistoryQuery, want int) func() error {
		return func() error {
			page, _, err := s.History(ctx, q)
			if err == nil && len(page) != want {
				err = fmt.Errorf("History = %d messages; want %d", len(page), want)
			}
			return err
		}
	}
	for _, q := range []struct {
		name string
		ask  func() error
	}{
		{"history-newest", history(HistoryQuery{Client: "r", Limit: 50}, 50)},
		{"history-rare-peer", history(HistoryQuery{Client: "r", With: "rare", Limit: 500}, n/rareEvery)},
		{"receipts", func() error {
			rs, err := s.Receipts(ctx, "sender", recent)
			if err == nil && len(rs) != len(recent) {
				err = fmt.Errorf("Receipts = %d; want %d", len(rs), len(recent))
			}
			return err
		}},
		{"mark-read", func() error {
			_, err := s.MarkRead(ctx, "r", recent, 0, time.Now())
			return err
		}},
		{"prune-none-due", func() error { // the hourly retention sweep when nothing is old enough
			_, err := s.Prune(ctx, base.Add(-time.Hour))
			return err
		}},
		{"read-states", func() error {
			_, err := s.ReadStates(ctx, []string{"r", "sender"})
			return err
		}},
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
				if err := q.ask(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
			b.ReportMetric(float64(worst.Microseconds()), "lock-wait-max-µs")
		})
	}
}

// BenchmarkCompactionCopy is what a compaction holds the store's lock for
// (collect): taking what its snapshot is written from, beside the writer —
// the blocks of the message list and of the mailboxes (chunked.freeze),
// which were copied whole before (16–17 ms). Every send waits for it;
// 200 000 messages, as BenchmarkAtScale.
func BenchmarkCompactionCopy(b *testing.B) {
	j := openJournal(b, b.TempDir(), JournalOptions{})
	ctx := context.Background()
	for i := range 200_000 {
		if _, err := AppendWait(ctx, j, benchMsg(uint64(i), "r"), []string{"r"}, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		j.mu.Lock()
		st := j.collect()
		j.mu.Unlock()
		if len(st.memMsgs)+len(st.memBoxes) == 0 { // nothing collected
			b.Fatal("collected nothing")
		}
	}
}

// BenchmarkOpenAtScale is a restart of the default store holding 200 000
// messages: replaying them from the journal's records, and from the
// snapshot a compaction made of them (each mailbox entry names its
// message by id, looked up as it is restored).
func BenchmarkOpenAtScale(b *testing.B) {
	dir := b.TempDir()
	s, err := OpenJournal(context.Background(), dir, JournalOptions{CompactAt: -1})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 200_000 {
		if _, err := AppendWait(context.Background(), s, benchMsg(uint64(i), "r"), []string{"r"}, 0); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	open := func(b *testing.B) {
		for b.Loop() {
			s, err := OpenJournal(context.Background(), dir, JournalOptions{CompactAt: -1})
			if err != nil {
				b.Fatal(err)
			}
			if n, _ := s.Unacked(context.Background(), "r"); n != 200_000 {
				b.Fatalf("reopened with %d messages in the mailbox; want 200000", n)
			}
			s.Close()
		}
	}
	b.Run("records", open)
	// An open with a small CompactAt rewrites the journal as a snapshot;
	// the opens after it read that.
	s, err = OpenJournal(context.Background(), dir, JournalOptions{CompactAt: 1})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	b.Run("snapshot", open)
}

// BenchmarkGrowingMailbox is sends to one mailbox that grows to b.N
// messages on the default store, its compactions included (run it with
// -benchtime 400000x): the longest a send took, and the 99.99th
// percentile, are what a mailbox's growth costs the relay's sends. A list
// kept in one slice stalled the send that found it full while it was
// copied to a larger array (3–50 ms at 100 000–400 000 messages on the
// 2-vCPU VM), and each compaction copied every list under the lock
// (BenchmarkCompactionCopy); chunked lists never copy.
func BenchmarkGrowingMailbox(b *testing.B) {
	s := openJournal(b, b.TempDir(), JournalOptions{})
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	body := benchMsg(0, "r").Body
	b.ResetTimer()
	for i := range b.N {
		m := benchMsg(uint64(i), "r")
		m.Body = string([]byte(body)) // a message of its own, as a decoded frame's
		t0 := time.Now()
		if _, err := AppendWait(ctx, s, m, []string{"r"}, 0); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*9999/10000].Microseconds()), "p99.99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
