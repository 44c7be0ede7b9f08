package store

import "sort"

// chunked is a list kept in blocks of chunkLen items. A slice that is full
// moves all it holds to a new array on the next append: for a mailbox of
// 200 000 entries a 7 MB copy, into memory the kernel must first map, made
// under the store's lock by whichever send found it full — every send
// stalled 3–50 ms each time a large mailbox or the message list grew
// (on the 2-vCPU VM of docs/benchmarks.md, where a page fault costs
// 10 µs). Here a full block is left as it is and the next item starts a
// new one: nothing stored is moved by an append, and no allocation is
// larger than a block.
//
// The first block grows as a slice does, so that the many small lists (a
// mailbox holding a few messages) stay small; the blocks after it are
// made whole. Items are found by their index: at(i) is two loads.
type chunked[T any] struct {
	blocks [][]T // each full (chunkLen items) but the last
	n      int
}

const (
	chunkShift = 10
	chunkLen   = 1 << chunkShift // 32 KiB of mailbox entries, 8 KiB of message pointers
)

// len is how many items c holds.
func (c *chunked[T]) len() int { return c.n }

// at is the item at i, in place: valid until the next change of c.
func (c *chunked[T]) at(i int) *T { return &c.blocks[i>>chunkShift][i&(chunkLen-1)] }

// get is the item at i.
func (c *chunked[T]) get(i int) T { return c.blocks[i>>chunkShift][i&(chunkLen-1)] }

// last is the item at the end; c must not be empty.
func (c *chunked[T]) last() T { return c.get(c.n - 1) }

func (c *chunked[T]) append(v T) {
	switch b := len(c.blocks); {
	case b == 0:
		c.blocks = [][]T{{v}}
	case len(c.blocks[b-1]) == chunkLen:
		blk := make([]T, 1, chunkLen)
		blk[0] = v
		c.blocks = append(c.blocks, blk)
	default:
		c.blocks[b-1] = append(c.blocks[b-1], v)
	}
	c.n++
}

// insert puts v at i, moving the items from i on one place up: for the
// rare item that does not go at the end, nearly always close to it.
func (c *chunked[T]) insert(i int, v T) {
	var zero T
	c.append(zero)
	for j := c.n - 1; j > i; j-- {
		*c.at(j) = c.get(j - 1)
	}
	*c.at(i) = v
}

// delete takes the item at i out, moving those after it one place down.
func (c *chunked[T]) delete(i int) {
	for j := i; j < c.n-1; j++ {
		*c.at(j) = c.get(j + 1)
	}
	c.truncate(c.n - 1)
}

// keep drops every item keep returns false for, in place, and reports
// how many went.
func (c *chunked[T]) keep(keep func(*T) bool) int {
	w := 0
	for r := range c.n {
		if p := c.at(r); keep(p) {
			if w != r {
				*c.at(w) = *p
			}
			w++
		}
	}
	gone := c.n - w
	c.truncate(w)
	return gone
}

// truncate drops the items from n on. What went is cleared, so that it no
// longer keeps anything reachable; blocks left empty are let go.
func (c *chunked[T]) truncate(n int) {
	if n >= c.n {
		return
	}
	for i := n; i < c.n && i>>chunkShift < len(c.blocks); i = (i>>chunkShift + 1) << chunkShift {
		b := c.blocks[i>>chunkShift]
		clear(b[i&(chunkLen-1):])
		c.blocks[i>>chunkShift] = b[:i&(chunkLen-1)]
	}
	keepBlocks := (n + chunkLen - 1) >> chunkShift
	clear(c.blocks[keepBlocks:])
	c.blocks = c.blocks[:keepBlocks]
	c.n = n
}

// search is the smallest index i in [0, len) for which f(item i) is true,
// or len: f must be false and then true along the list (sort.Search).
func (c *chunked[T]) search(f func(*T) bool) int {
	return sort.Search(c.n, func(i int) bool { return f(c.at(i)) })
}

// clone copies the items into one slice.
func (c *chunked[T]) clone() []T {
	out := make([]T, 0, c.n)
	for _, b := range c.blocks {
		out = append(out, b...)
	}
	return out
}
