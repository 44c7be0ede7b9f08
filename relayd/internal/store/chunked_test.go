package store

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestChunkedAsSlice runs random appends, inserts, deletes, changes in
// place, filters and truncations on a chunked list and on a plain slice
// side by side, across several blocks, and compares them after each:
// items, length and search. Whatever a change drops is cleared from the
// blocks, so that it keeps nothing reachable. Now and then the list is
// frozen, as a compaction does: what freeze returned must read the same
// however the list changes after.
func TestChunkedAsSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var c chunked[*int]
	var want []*int
	next := 0
	item := func() *int { next++; v := next; return &v }
	type frozen struct {
		blocks [][]*int
		want   []*int
	}
	var views []frozen
	for step := range 3000 {
		switch k := r.IntN(22); {
		case k >= 20 && len(want) > 0: // changes in place
			for range 1 + r.IntN(50) {
				at := r.IntN(len(want))
				v := item()
				*c.at(at) = v
				want[at] = v
			}
		case k < 12: // appends, in runs that fill blocks
			for range r.IntN(2 * chunkLen / 3) {
				v := item()
				c.append(v)
				want = append(want, v)
			}
		case k < 14 && len(want) > 0: // near the end, as out-of-order ids go
			at := max(0, len(want)-1-r.IntN(5))
			if r.IntN(4) == 0 {
				at = r.IntN(len(want))
			}
			v := item()
			c.insert(at, v)
			want = slices.Insert(want, at, v)
		case k < 16 && len(want) > 0:
			at := r.IntN(len(want))
			c.delete(at)
			want = slices.Delete(want, at, at+1)
		case k < 18:
			mod := 2 + r.IntN(5)
			gone := c.keep(func(v *int) bool { return *v%mod != 0 })
			before := len(want)
			want = slices.DeleteFunc(want, func(v *int) bool { return *v%mod == 0 })
			if gone != before-len(want) {
				t.Fatalf("step %d: keep reported %d gone; %d went", step, gone, before-len(want))
			}
		default:
			n := r.IntN(len(want) + 1)
			c.truncate(n)
			want = want[:n]
		}
		if c.len() != len(want) {
			t.Fatalf("step %d: len %d; want %d", step, c.len(), len(want))
		}
		for i, v := range want {
			if c.get(i) != v || *c.at(i) != v {
				t.Fatalf("step %d: item %d is %d; want %d", step, i, *c.get(i), *v)
			}
		}
		if step%97 == 0 {
			views = append(views, frozen{c.freeze(), slices.Clone(want)})
		}
		for i, v := range views {
			if got := slices.Concat(v.blocks...); !slices.Equal(got, v.want) {
				t.Fatalf("step %d: the list frozen at step %d changed after", step, i*97)
			}
		}
		for b, blk := range c.blocks {
			if b < len(c.blocks)-1 && len(blk) != chunkLen {
				t.Fatalf("step %d: block %d of %d holds %d items; all but the last must be full", step, b, len(c.blocks), len(blk))
			}
			for _, v := range blk[len(blk):cap(blk)] {
				if v != nil {
					t.Fatalf("step %d: block %d keeps a dropped item past its end", step, b)
				}
			}
		}
		if len(want) > 0 { // sorted by value? Items are not; search the position instead.
			at := r.IntN(len(want))
			if got := c.search(func(v *int) bool { return slices.Index(want, v) >= at }); got != at {
				t.Fatalf("step %d: search for position %d found %d", step, at, got)
			}
		}
	}
}
