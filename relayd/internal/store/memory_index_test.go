package store

import (
	"cmp"
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
	"weak"
)

// TestMailboxIndex checks mailbox.index, with its guess from dense seqs,
// against a plain binary search, on mailboxes with and without the gaps
// clears and prunes leave, within the first block of entries and across
// several.
func TestMailboxIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 2000 {
		var b mailbox
		var all []memEntry
		seq := uint64(r.IntN(5))
		n := r.IntN(40)
		if round%100 == 0 {
			n = 3*chunkLen + r.IntN(chunkLen)
		}
		for range n {
			seq += 1 + uint64(r.IntN(3)/2*r.IntN(4)) // mostly dense
			b.entries.append(memEntry{seq: seq})
			all = append(all, memEntry{seq: seq})
		}
		for q := uint64(0); q <= seq+2; q++ {
			wantI, wantOK := slices.BinarySearchFunc(all, q, func(e memEntry, s uint64) int { return cmp.Compare(e.seq, s) })
			if i, ok := b.index(q); i != wantI || ok != wantOK {
				t.Fatalf("index(%d) of %d entries = %d, %v; want %d, %v", q, len(all), i, ok, wantI, wantOK)
			}
		}
	}
}

// TestMemoryUnreadCount checks the unread counts Memory keeps (and its
// read-through mark, which the reads reported by id move on) against a
// count of the entries, through sends, reads by id and up to a seq,
// clears and prunes in random order.
func TestMemoryUnreadCount(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	ctx := context.Background()
	s := NewMemory()
	var sent []Message
	for step := range 3000 {
		switch k := r.IntN(20); {
		case k < 12:
			m := newMsg("S", "A")
			m.TS = base.Add(time.Duration(step) * time.Second)
			to := []string{"A"}
			if k == 0 {
				to = []string{"A", "B"}
			}
			send(t, s, m, to...)
			sent = append(sent, m)
		case k < 16 && len(sent) > 0:
			var ids []string
			for range 1 + r.IntN(3) {
				ids = append(ids, sent[len(sent)-1-r.IntN(min(len(sent), 20))].ID)
			}
			s.MarkRead(ctx, "A", ids, 0, time.Now())
		case k < 18:
			last, _ := s.LastSeq(ctx, "A")
			s.MarkRead(ctx, "A", nil, uint64(r.IntN(int(last)+1)), time.Now())
		case k == 18:
			last, _ := s.LastSeq(ctx, "A")
			s.Ack(ctx, "A", uint64(r.IntN(int(last)+1)))
			s.Clear(ctx, "A", r.IntN(4) == 0)
		default:
			s.Prune(ctx, base.Add(time.Duration(step-r.IntN(200))*time.Second))
		}
		for _, id := range []string{"A", "B"} {
			b := s.mailboxes[id]
			if b == nil {
				continue
			}
			want := 0
			for i := range b.entries.len() {
				if e := b.entries.get(i); e.read == 0 {
					want++
					if e.seq <= b.readThrough {
						t.Fatalf("step %d: %s's entry %d (seq %d) is unread, below its read-through mark %d", step, id, i, e.seq, b.readThrough)
					}
				}
			}
			rs, _ := s.ReadStates(ctx, []string{id})
			if b.unread != want || rs[id].Unread != want {
				t.Fatalf("step %d: %s counts %d unread (ReadStates %d); its entries hold %d", step, id, b.unread, rs[id].Unread, want)
			}
		}
	}
	// Every message read by id, oldest first (as relay-mcp reports them):
	// the read-through mark is at the end, so the oldest-unread and
	// unread-count questions look at nothing before it.
	for _, m := range sent {
		s.MarkRead(ctx, "A", []string{m.ID}, 0, time.Now())
	}
	if b := s.mailboxes["A"]; b.unread != 0 || b.entries.len() > 0 && b.readThrough != b.entries.last().seq {
		t.Fatalf("after reading everything by id: %d unread, read through %d, last entry %v", b.unread, b.readThrough, b.entries.last().seq)
	}
}

// Pruned messages are let go: nothing of the store (the
// message list's or a mailbox's spare capacity) keeps them reachable.
func TestMemoryLetsPrunedMessagesGo(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	var refs []weak.Pointer[memMsg]
	for i := range 100 {
		m := newMsg("S", "A", "B")
		m.TS = base.Add(time.Duration(i) * time.Second)
		send(t, s, m)
		s.mu.Lock()
		_, mm := s.byID(m.ID)
		s.mu.Unlock()
		refs = append(refs, weak.Make(mm))
	}
	keep := newMsg("S", "A") // newer than the cut: stays
	keep.TS = base.Add(time.Hour)
	send(t, s, keep)
	if n, err := s.Prune(ctx, base.Add(30*time.Minute)); err != nil || n != 200 {
		t.Fatalf("Prune = %d, %v; want the 200 entries of the 100 older messages", n, err)
	}
	runtime.GC()
	runtime.GC()
	for i, r := range refs {
		if r.Value() != nil {
			t.Fatalf("message %d is still reachable after its prune", i)
		}
	}
	if s.order.len() != 1 || s.mailboxes["A"].entries.len() != 1 {
		t.Fatalf("after the prune: %d messages, %d entries for A; want the newer one", s.order.len(), s.mailboxes["A"].entries.len())
	}
}

// TestPruneSkipsOnlyWhenNothingIsDue: a sweep with nothing old enough to
// go returns without walking the messages (Memory.oldest), and one with
// something due prunes exactly it — with messages stored out of time
// order (a cluster places them as they come), prunes between sends, and a
// store emptied and filled again.
func TestPruneSkipsOnlyWhenNothingIsDue(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	ctx := context.Background()
	s := NewMemory()
	var held []time.Time // the model: the times of the messages held
	for step := range 3000 {
		if r.IntN(4) > 0 {
			m := newMsg("a", "b")
			m.TS = base.Add(time.Duration(r.IntN(10_000)) * time.Second)
			send(t, s, m)
			held = append(held, m.TS)
			continue
		}
		cut := base.Add(time.Duration(r.IntN(11_000)) * time.Second)
		if r.IntN(20) == 0 {
			cut = base.Add(time.Hour * 24) // everything
		}
		want := 0
		kept := held[:0]
		for _, ts := range held {
			if ts.Before(cut) {
				want++
			} else {
				kept = append(kept, ts)
			}
		}
		held = kept
		n, err := s.Prune(ctx, cut)
		if err != nil || n != want {
			t.Fatalf("step %d: Prune(%s) = %d, %v; want %d", step, cut.Sub(base), n, err, want)
		}
		if s.order.len() != len(held) {
			t.Fatalf("step %d: %d messages held after the prune; want %d", step, s.order.len(), len(held))
		}
		// The next sweep skips the walk only if the bound is the oldest
		// time held: one left lower would walk every message each hour.
		if len(held) > 0 && !s.oldest.Equal(slices.MinFunc(held, time.Time.Compare)) {
			t.Fatalf("step %d: after the prune Memory's oldest is %s; the oldest message held is %s", step, s.oldest.Sub(base), slices.MinFunc(held, time.Time.Compare).Sub(base))
		}
	}
}
