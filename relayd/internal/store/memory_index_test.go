package store

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMailboxIndex checks mailbox.index, with its guess from dense seqs,
// against a plain binary search, on mailboxes with and without the gaps
// clears and prunes leave.
func TestMailboxIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		var b mailbox
		seq := uint64(r.IntN(5))
		for range r.IntN(40) {
			seq += 1 + uint64(r.IntN(3)/2*r.IntN(4)) // mostly dense
			b.entries = append(b.entries, memEntry{seq: seq})
		}
		for q := uint64(0); q <= seq+2; q++ {
			wantI, wantOK := slices.BinarySearchFunc(b.entries, q, func(e memEntry, s uint64) int { return cmp.Compare(e.seq, s) })
			if i, ok := b.index(q); i != wantI || ok != wantOK {
				t.Fatalf("index(%d) of %v = %d, %v; want %d, %v", q, b.entries, i, ok, wantI, wantOK)
			}
		}
	}
}
