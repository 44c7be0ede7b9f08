package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

type asyncResult struct {
	slots []Slot
	dup   *Sent
	err   error
}

// appendAsync runs Submit and returns a channel with its outcome.
func appendAsync(s *SQLite, msg Message, ref *SendRef, recipients ...string) <-chan asyncResult {
	ch := make(chan asyncResult, 1)
	s.Submit(msg, recipients, 0, ref, func(r Submitted) {
		ch <- asyncResult{r.Slots, r.Dup, r.Err}
	})
	return ch
}

func digest(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// One pipelining sender: its messages get seqs in call order, and done runs
// in call order.
func TestSQLiteAppendAsyncOrder(t *testing.T) {
	s := openSQLite(t, t.TempDir())
	const n = 2000
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		m := newMsg("a", "b")
		s.Submit(m, []string{"b"}, 0, nil, func(r Submitted) {
			slots, err := r.Slots, r.Err
			defer wg.Done()
			if err != nil || slots[0].Seq != uint64(i+1) {
				t.Errorf("append %d: slots %v err %v, want seq %d", i, slots, err, i+1)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
	}
	wg.Wait()
	if !slices.IsSorted(order) {
		t.Error("done callbacks ran out of call order")
	}
	if got := len(pending(t, s, "b", 0, 0)); got != n {
		t.Errorf("b holds %d, want %d", got, n)
	}
}

// A send retried with the same ref and content is answered with the first
// one's record, also after a reopen; other content under the same ref is a
// new message.
func TestSQLiteRefsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := openSQLite(t, dir)
	first := newMsg("a", "b", "c")
	ref := &SendRef{Ref: "r1", Digest: digest("hello")}
	r := <-appendAsync(s, first, ref, "b", "c")
	if r.err != nil || r.dup != nil {
		t.Fatalf("first send: %+v", r)
	}
	// Same batch or not, a retry is recognised.
	r = <-appendAsync(s, newMsg("a", "b", "c"), ref, "b", "c")
	if r.dup == nil || r.dup.ID != first.ID {
		t.Fatalf("retry before reopen: %+v, want dup of %s", r, first.ID)
	}
	s.Close()

	s = openSQLite(t, dir)
	r = <-appendAsync(s, newMsg("a", "b", "c"), ref, "b", "c")
	if r.err != nil || r.dup == nil {
		t.Fatalf("retry after reopen: %+v, want dup", r)
	}
	if r.dup.ID != first.ID || !r.dup.TS.Equal(first.TS) || !slices.Equal(r.dup.Recipients, []string{"b", "c"}) ||
		!slices.Equal(r.dup.Slots, []Slot{{Seq: 1}, {Seq: 1}}) {
		t.Errorf("dup after reopen = %+v, want the first send's record", r.dup)
	}
	// Same ref, other content: stored.
	r = <-appendAsync(s, newMsg("a", "b"), &SendRef{Ref: "r1", Digest: digest("other")}, "b")
	if r.err != nil || r.dup != nil || r.slots[0].Seq != 2 {
		t.Errorf("reused ref with new content: %+v, want stored at seq 2", r)
	}
	// Another client's ref of the same name is its own.
	r = <-appendAsync(s, newMsg("z", "b"), &SendRef{Ref: "r1", Digest: digest("other")}, "b")
	if r.dup != nil {
		t.Errorf("another client's ref taken for a retry: %+v", r)
	}
	eq(t, "b's mailbox", seqs(pending(t, s, "b", 0, 0)), []uint64{1, 2, 3})
}

// The window keeps the newest RefWindow refs per client in memory, and a
// reopen reads back the newest RefWindow.
func TestSQLiteRefWindowBounded(t *testing.T) {
	dir := t.TempDir()
	s := openSQLite(t, dir)
	n := protocol.RefWindow + 2*refTrimEvery
	var last <-chan asyncResult
	for i := range n {
		last = appendAsync(s, newMsg("a", "b"), &SendRef{Ref: fmt.Sprint("r", i), Digest: digest(fmt.Sprint(i))}, "b")
	}
	if r := <-last; r.err != nil {
		t.Fatal(r.err)
	}
	s.refsMu.Lock()
	held := len(s.refs["a"].byRef)
	s.refsMu.Unlock()
	if held < protocol.RefWindow || held > protocol.RefWindow+refTrimEvery {
		t.Errorf("the window holds %d refs for a, want %d..%d", held, protocol.RefWindow, protocol.RefWindow+refTrimEvery)
	}
	s.Close()
	s = openSQLite(t, dir)
	if r := <-appendAsync(s, newMsg("a", "b"), &SendRef{Ref: fmt.Sprint("r", n-1), Digest: digest(fmt.Sprint(n - 1))}, "b"); r.dup == nil {
		t.Error("the newest ref was forgotten")
	}
	if r := <-appendAsync(s, newMsg("a", "b"), &SendRef{Ref: "r0", Digest: digest("0")}, "b"); r.dup != nil {
		t.Error("a ref older than the window was still taken for a retry")
	}
}

// TestSQLiteMatchesMemory drives both stores with the same random traffic
// (appends, broadcasts, acks, clears, full mailboxes) and compares every
// read: it checks the recent cache behind Pending and the index walk behind
// History against the memory store's plain loops.
func TestSQLiteMatchesMemory(t *testing.T) {
	ctx := context.Background()
	mem, sq := NewMemory(), openSQLite(t, t.TempDir())
	rng := rand.New(rand.NewPCG(1, 2))
	clients := []string{"a", "b", "c", "d"}
	held := map[string]uint64{} // what each client's writer has read
	pick := func() string { return clients[rng.IntN(len(clients))] }
	for step := range 3000 {
		switch r := rng.IntN(100); {
		case r < 60:
			from := pick()
			to := []string{pick()}
			recipients := to
			if rng.IntN(5) == 0 {
				to, recipients = []string{"*"}, slices.DeleteFunc(slices.Clone(clients), func(c string) bool { return c == from })
			} else if rng.IntN(4) == 0 {
				to = append(to, pick())
				recipients = slices.Compact(slices.Sorted(slices.Values(to)))
			}
			m := newMsg(from, to...)
			a, err1 := mem.Append(ctx, m, recipients, 40)
			b, err2 := sq.Append(ctx, m, recipients, 40)
			if err1 != nil || err2 != nil || !slices.Equal(a, b) {
				t.Fatalf("step %d append: memory %v %v, sqlite %v %v", step, a, err1, b, err2)
			}
		case r < 80:
			id := pick()
			a, _ := mem.Pending(ctx, id, held[id], 1+rng.IntN(20), false)
			b, err := sq.Pending(ctx, id, held[id], len(a)+rng.IntN(2), false)
			if err != nil || len(b) < len(a) {
				t.Fatalf("step %d pending %s: sqlite %d %v, memory %d", step, id, len(b), err, len(a))
			}
			b = b[:len(a)]
			for i := range a {
				if a[i].Seq != b[i].Seq || a[i].Msg.ID != b[i].Msg.ID || !slices.Equal(a[i].Msg.To, b[i].Msg.To) {
					t.Fatalf("step %d pending %s [%d]: memory %+v sqlite %+v", step, id, i, a[i], b[i])
				}
			}
			if len(a) > 0 {
				held[id] = a[len(a)-1].Seq
			}
		case r < 92:
			id := pick()
			upto := held[id]
			if rng.IntN(3) == 0 {
				upto = uint64(rng.IntN(int(upto) + 1))
			}
			mem.Ack(ctx, id, upto)
			if err := sq.Ack(ctx, id, upto); err != nil {
				t.Fatal(err)
			}
		case r < 93:
			id, all := pick(), rng.IntN(2) == 0
			a, _ := mem.Clear(ctx, id, all)
			b, err := sq.Clear(ctx, id, all)
			if err != nil || a != b {
				t.Fatalf("step %d clear %s: memory %d sqlite %d %v", step, id, a, b, err)
			}
			if all {
				held[id], _ = mem.LastSeq(ctx, id)
			}
		default:
			compareHistory(t, mem, sq, pick(), []string{"", pick()}[rng.IntN(2)], 1+rng.IntN(30))
		}
	}
	for _, id := range clients {
		compareHistory(t, mem, sq, id, "", 7)
	}
}

// compareHistory pages through id's history both ways in both stores.
func compareHistory(t *testing.T, a, b Store, id, with string, limit int) {
	t.Helper()
	ctx := context.Background()
	walk := func(s Store, forward bool) []string {
		var out []string
		q := HistoryQuery{Client: id, With: with, Limit: limit}
		if forward {
			q.After = "0" // before every id
		}
		for range 10000 {
			page, more, err := s.History(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if forward {
				out = append(out, ids(page)...)
				if !more {
					return out
				}
				q.After = page[len(page)-1].ID
			} else {
				out = append(ids(page), out...)
				if !more {
					return out
				}
				q.Before = page[0].ID
			}
		}
		t.Fatal("history paging does not end")
		return nil
	}
	for _, fwd := range []bool{false, true} {
		x, y := walk(a, fwd), walk(b, fwd)
		if !slices.Equal(x, y) {
			t.Fatalf("history of %s with %q (forward %v, limit %d): memory %d msgs, sqlite %d msgs\n%v\n%v", id, with, fwd, limit, len(x), len(y), x, y)
		}
	}
}

// History at scale: a page costs about its size, however deep.
func TestSQLiteHistoryAtScale(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("fills a store with 200 000 messages: too slow under -race or -short")
	}
	ctx := context.Background()
	s := openSQLite(t, t.TempDir())
	const n = 200_000
	fill(t, s, n)
	for _, c := range []struct {
		name string
		q    HistoryQuery
	}{
		{"newest page", HistoryQuery{Client: "r0", Limit: 50}},
		{"newest page with a peer", HistoryQuery{Client: "r0", With: "sender", Limit: 50}},
		{"deep page", HistoryQuery{Client: "r0", Limit: 50, Before: fmt.Sprintf("0193a1b2-0000-7000-9000-%012d", n/10)}},
		{"forward page", HistoryQuery{Client: "r0", Limit: 50, After: fmt.Sprintf("0193a1b2-0000-7000-9000-%012d", n/2)}},
		{"sender's newest", HistoryQuery{Client: "sender", Limit: 50}},
	} {
		start := time.Now()
		page, more, err := s.History(ctx, c.q)
		took := time.Since(start)
		if err != nil || len(page) != 50 || !more {
			t.Fatalf("%s: %d msgs more=%v %v", c.name, len(page), more, err)
		}
		t.Logf("%s of %d messages: %s", c.name, n, took)
		if took > 100*time.Millisecond {
			t.Errorf("%s took %s, want a few ms (an index walk)", c.name, took)
		}
	}
}

// fill appends n messages from "sender" spread over eight mailboxes, in
// large transactions.
func fill(t testing.TB, s *SQLite, n int) {
	t.Helper()
	const per = 5000
	seq := map[string]uint64{}
	for done := 0; done < n; done += per {
		err := s.write(context.Background(), func(b *batch) error {
			for i := done; i < min(done+per, n); i++ {
				to := benchRecipients[i%len(benchRecipients)]
				m := benchMsg(uint64(i+1), to)
				a, err := s.newAppend(m, []string{to}, 0, nil)
				if err != nil {
					return err
				}
				if seq[to] == 0 {
					bx, _ := b.box(to, true)
					seq[to] = bx.last
				}
				seq[to]++
				a.slots[0].Seq = seq[to]
				if err := a.apply(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A retry submitted while the first attempt is still on its way to the
// disk gets no seqs and is visible to no reader, provisional ones
// included: it is answered with the first one's record once that commits,
// and the next message takes the next seq. If the first attempt fails, so
// does the retry, and the one after it is stored.
func TestSQLiteRetryOfSendInFlight(t *testing.T) {
	ctx := context.Background()
	s := openSQLite(t, t.TempDir())
	hold := func(fail bool) (release func()) {
		ch := make(chan struct{})
		h := func(*sql.Tx) error {
			<-ch
			if fail {
				return errors.New("injected: disk I/O error")
			}
			return nil
		}
		s.hookInTx.Store(&h)
		var once sync.Once
		release = func() { once.Do(func() { close(ch) }) }
		t.Cleanup(release) // a failed check must not leave the committer held
		return release
	}
	ref := &SendRef{Ref: "r1", Digest: digest("hello")}
	release := hold(false)
	first := newMsg("a", "b")
	r1 := appendAsync(s, first, ref, "b")
	r2 := make(chan asyncResult, 1)
	slots, early := s.Submit(newMsg("a", "b"), []string{"b"}, 0, ref, func(r Submitted) {
		if r.Early || r.Slots != nil {
			t.Errorf("retry settled as %+v, want neither early nor slots", r)
		}
		r2 <- asyncResult{r.Slots, r.Dup, r.Err}
	})
	if slots != nil || early {
		t.Errorf("retry in flight got slots %v early %v, want none", slots, early)
	}
	ds, err := s.Pending(ctx, "b", 0, 0, true)
	if err != nil || len(ds) != 1 || ds[0].Msg.ID != first.ID || !ds[0].Provisional {
		t.Fatalf("provisional Pending while both are in flight = %+v, %v; want only %s", ds, err, first.ID)
	}
	release()
	if r := <-r1; r.err != nil || r.dup != nil || r.slots[0].Seq != 1 {
		t.Fatalf("first attempt: %+v, want stored at seq 1", r)
	}
	if r := <-r2; r.err != nil || r.dup == nil || r.dup.ID != first.ID || !slices.Equal(r.dup.Slots, []Slot{{Seq: 1}}) {
		t.Fatalf("retry: %+v, want the first attempt's record", r)
	}
	next := newMsg("a", "b")
	if sl := send(t, s, next); sl[0].Seq != 2 {
		t.Errorf("next message at seq %d, want 2", sl[0].Seq)
	}
	var got []string
	for _, d := range pending(t, s, "b", 0, 0) {
		got = append(got, d.Msg.ID)
	}
	eq(t, "b's mailbox", got, []string{first.ID, next.ID})

	ref = &SendRef{Ref: "r2", Digest: digest("again")}
	release = hold(true)
	f1 := appendAsync(s, newMsg("a", "b"), ref, "b")
	f2 := appendAsync(s, newMsg("a", "b"), ref, "b")
	release()
	if r := <-f1; r.err == nil {
		t.Fatalf("first attempt on a failing disk: %+v, want an error", r)
	}
	if r := <-f2; r.err == nil || r.dup != nil {
		t.Fatalf("retry of a failed attempt: %+v, want an error", r)
	}
	s.hookInTx.Store(nil)
	third := newMsg("a", "b")
	if r := <-appendAsync(s, third, ref, "b"); r.err != nil || r.dup != nil || r.slots[0].Seq != 3 {
		t.Fatalf("the attempt after the failed ones: %+v, want stored at seq 3", r)
	}
}

// A recipient whose writer is a few thousand messages behind several
// pipelining senders reads them from memory, not back from the file: the
// run of one mailbox holds more than the four send windows of
// `relayd load throughput` (4 × 256) and the backlog they leave.
func TestSQLitePendingBehindFromMemory(t *testing.T) {
	s := openSQLite(t, t.TempDir())
	const senders, each = 4, 1000
	var wg sync.WaitGroup
	wg.Add(senders * each)
	for i := range senders * each {
		s.Submit(newMsg(fmt.Sprintf("s%d", i%senders), "b"), []string{"b"}, 0, nil, func(r Submitted) {
			defer wg.Done()
			if r.Err != nil {
				t.Errorf("send %d: %v", i, r.Err)
			}
		})
	}
	wg.Wait()
	ds, ok := s.pendingFromRecent("b", 0, 0, false)
	if !ok {
		t.Fatalf("a writer %d messages behind reads them back from the file; want them from the recent cache", senders*each)
	}
	if len(ds) != senders*each {
		t.Fatalf("the recent cache gave %d deliveries, want %d", len(ds), senders*each)
	}
	if ds[0].Seq != 1 || ds[len(ds)-1].Seq != senders*each {
		t.Fatalf("the recent cache gave seqs %d…%d, want 1…%d", ds[0].Seq, ds[len(ds)-1].Seq, senders*each)
	}
}
