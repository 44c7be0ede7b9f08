package store

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Hold is the operator's hold of a pair of client ids (the console's brake
// for two agents caught in a loop): while it stands the relay refuses
// their messages to each other. The record stays once released, so that
// the operator can see who held and released what.
type Hold struct {
	Pair       [2]string // sorted: Pair[0] < Pair[1]
	By         string    // who held it: an operator id (protocol.PersonPrefix …)
	At         time.Time // when
	ReleasedBy string    // who released it; "" while it stands
	ReleasedAt time.Time // when; zero while it stands
}

// Standing reports whether the hold has not been released.
func (h Hold) Standing() bool { return h.ReleasedAt.IsZero() }

// Holder keeps the operator's holds, so that a restart of relayd does not
// release them: the SQLite store on disk, Memory (and a cluster node, for
// itself) in memory. Part of Store.
type Holder interface {
	// PutHold records that h.By held h.Pair at h.At. A pair held already
	// keeps its first record, and PutHold reports false.
	PutHold(ctx context.Context, h Hold) (bool, error)
	// EndHold records that by released pair at at. It reports false when
	// the pair was not held.
	EndHold(ctx context.Context, pair [2]string, by string, at time.Time) (bool, error)
	// Holds returns the holds standing and the latest released ones (up
	// to released of them), in the order they were made.
	Holds(ctx context.Context, released int) ([]Hold, error)
}

// keptReleases is how many released holds a store remembers.
const keptReleases = 100

// SortPair returns a, b in the order a Hold keeps them.
func SortPair(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

// HoldBook is a Holder in memory: Memory's, and a cluster node's.
// The zero value is ready; safe for concurrent use.
type HoldBook struct {
	mu   sync.Mutex
	list []Hold // in the order made
}

// PutHold implements Holder.
func (b *HoldBook) PutHold(_ context.Context, h Hold) (bool, error) {
	h.Pair = SortPair(h.Pair[0], h.Pair[1])
	h.ReleasedBy, h.ReleasedAt = "", time.Time{}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.standing(h.Pair) >= 0 {
		return false, nil
	}
	b.list = append(b.list, h)
	return true, nil
}

// EndHold implements Holder.
func (b *HoldBook) EndHold(_ context.Context, pair [2]string, by string, at time.Time) (bool, error) {
	pair = SortPair(pair[0], pair[1])
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.standing(pair)
	if i < 0 {
		return false, nil
	}
	b.list[i].ReleasedBy, b.list[i].ReleasedAt = by, releaseTime(at)
	released := 0
	for j := len(b.list) - 1; j >= 0; j-- {
		if b.list[j].Standing() {
			continue
		}
		if released++; released > keptReleases {
			b.list = slices.Delete(b.list, j, j+1)
		}
	}
	return true, nil
}

// Holds implements Holder.
func (b *HoldBook) Holds(_ context.Context, released int) ([]Hold, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Hold
	for i := len(b.list) - 1; i >= 0; i-- {
		h := b.list[i]
		if !h.Standing() {
			if released <= 0 {
				continue
			}
			released--
		}
		out = append(out, h)
	}
	slices.Reverse(out)
	return out, nil
}

// standing is the index of pair's standing hold, or -1. Called with mu held.
func (b *HoldBook) standing(pair [2]string) int {
	return slices.IndexFunc(b.list, func(h Hold) bool { return h.Standing() && h.Pair == pair })
}

// releaseTime is at, or now when at is zero: a released hold has a time.
func releaseTime(at time.Time) time.Time {
	if at.IsZero() {
		return time.Now().UTC()
	}
	return at
}
