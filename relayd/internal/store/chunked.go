package store

import (
	"slices"
	"sort"
)

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
// made whole. Items are found by their index: get(i) is two loads.
//
// A compaction reads the lists outside the store's lock (freeze): the
// blocks are shared with it, and a change copies a shared block before it
// writes to it (at), so a compaction costs the lock a few block headers
// a list instead of a copy of every item.
type chunked[T any] struct {
	blocks [][]T // each full (chunkLen items) but the last
	n      int
	// shared[b]: blocks[b] was handed to a reader by freeze and must be
	// copied before it is written to. Nil until the first freeze; then
	// as long as blocks.
	shared []bool
}

const (
	chunkShift = 10
	chunkLen   = 1 << chunkShift // 32 KiB of mailbox entries, 8 KiB of message pointers
)

// len is how many items c holds.
func (c *chunked[T]) len() int { return c.n }

// get is the item at i.
func (c *chunked[T]) get(i int) T { return c.blocks[i>>chunkShift][i&(chunkLen-1)] }

// at is the item at i, in place, to change it: valid until the next
// change of c.
func (c *chunked[T]) at(i int) *T {
	b := i >> chunkShift
	if c.shared != nil && c.shared[b] {
		c.own(b)
	}
	return &c.blocks[b][i&(chunkLen-1)]
}

// own replaces shared block b with a copy of it.
func (c *chunked[T]) own(b int) {
	blk := make([]T, len(c.blocks[b]), cap(c.blocks[b]))
	copy(blk, c.blocks[b])
	c.blocks[b] = blk
	c.shared[b] = false
}

// last is the item at the end; c must not be empty.
func (c *chunked[T]) last() T { return c.get(c.n - 1) }

// append adds v at the end. It writes into a shared last block only past
// the items a reader was given.
func (c *chunked[T]) append(v T) {
	switch b := len(c.blocks); {
	case b == 0 || len(c.blocks[b-1]) == chunkLen:
		size := chunkLen
		if b == 0 {
			size = 1
		}
		blk := make([]T, 1, size)
		blk[0] = v
		c.blocks = append(c.blocks, blk)
		if c.shared != nil {
			c.shared = append(c.shared, false)
		}
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
func (c *chunked[T]) keep(keep func(T) bool) int {
	w := 0
	for r := range c.n {
		if v := c.get(r); keep(v) {
			if w != r {
				*c.at(w) = v
			}
			w++
		}
	}
	gone := c.n - w
	c.truncate(w)
	return gone
}

// truncate drops the items from n on. Blocks left empty are let go; the
// rest of the last block is cleared, so that what went no longer keeps
// anything reachable.
func (c *chunked[T]) truncate(n int) {
	if n >= c.n {
		return
	}
	keepBlocks := (n + chunkLen - 1) >> chunkShift
	if end := n & (chunkLen - 1); end > 0 {
		last := keepBlocks - 1
		if c.shared != nil && c.shared[last] {
			c.own(last)
		}
		clear(c.blocks[last][end:])
		c.blocks[last] = c.blocks[last][:end]
	}
	clear(c.blocks[keepBlocks:])
	c.blocks = c.blocks[:keepBlocks]
	if c.shared != nil {
		c.shared = c.shared[:keepBlocks]
	}
	c.n = n
}

// search is the smallest index i in [0, len) for which f(item i) is true,
// or len: f must be false and then true along the list (sort.Search).
func (c *chunked[T]) search(f func(T) bool) int {
	return sort.Search(c.n, func(i int) bool { return f(c.get(i)) })
}

// freeze returns the items as they are now, for reading outside the lock
// that guards c: the blocks themselves, which c copies before it changes
// one of them again.
func (c *chunked[T]) freeze() [][]T {
	if c.shared == nil {
		c.shared = make([]bool, len(c.blocks))
	}
	for b := range c.shared {
		c.shared[b] = true
	}
	return slices.Clone(c.blocks)
}
