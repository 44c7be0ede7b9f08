package hub

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// The operator's holds (the console's brake for a pair caught in a loop):
// the hub enforces them from memory and keeps them in the store, so that a
// restart of relayd does not release them (LoadHolds).

// LoadHolds enforces the holds the store kept, and tells each agent of a
// held pair when it connects (the held notice), as before the restart.
// relayd calls it once, before it serves.
func (h *Hub) LoadHolds(ctx context.Context) error {
	hs, err := h.store.Holds(ctx, 0)
	if err != nil {
		return fmt.Errorf("read the operator's holds: %w", err)
	}
	for _, hd := range hs {
		if h.enforce(hd) {
			h.log.Info("pair held by the operator before the restart", "a", hd.Pair[0], "b", hd.Pair[1], "by", hd.By, "since", hd.At)
			h.tellHeld(hd.Pair)
		}
	}
	return nil
}

// Hold makes the relay refuse every message between a and b, in both
// directions, until Release: the operator's brake for a pair caught in a
// loop. by is the operator (an id of protocol.PersonPrefix). Both agents
// are told (the held notice), and the sender of a refused message is told
// why. The hold is enforced at once; an error means the store could not
// keep it, so a restart of relayd would release it.
func (h *Hub) Hold(ctx context.Context, a, b, by string) error {
	hd := store.Hold{Pair: store.SortPair(a, b), By: by, At: h.opts.Now().UTC()}
	if !h.enforce(hd) {
		return nil // held already: the first record stands
	}
	h.log.Warn("pair held by the operator", "a", hd.Pair[0], "b", hd.Pair[1], "by", by)
	h.tellHeld(hd.Pair)
	h.emit(Event{Kind: EventHold, Pair: hd.Pair, By: by, At: hd.At})
	if _, err := h.store.PutHold(ctx, hd); err != nil {
		h.log.Error("the hold is not kept in the store: a restart would release it", "a", hd.Pair[0], "b", hd.Pair[1], "err", err)
		return fmt.Errorf("held, but not kept in the store (a restart of relayd would release it): %w", err)
	}
	return nil
}

// Release lifts a Hold; by is the operator who released it.
func (h *Hub) Release(ctx context.Context, a, b, by string) error {
	pair := store.SortPair(a, b)
	at := h.opts.Now().UTC()
	h.holdMu.Lock()
	delete(h.holds, pair)
	h.holdMu.Unlock()
	h.log.Info("pair released by the operator", "a", pair[0], "b", pair[1], "by", by)
	h.notify(&protocol.Held{Peer: pair[1]}, pair[0])
	h.notify(&protocol.Held{Peer: pair[0]}, pair[1])
	h.emit(Event{Kind: EventRelease, Pair: pair, By: by, At: at})
	// Recorded even when this relay had no hold in memory: one the store
	// kept and a start could not load is released too.
	if _, err := h.store.EndHold(ctx, pair, by, at); err != nil {
		h.log.Error("the release is not kept in the store: a restart would hold the pair again", "a", pair[0], "b", pair[1], "err", err)
		return fmt.Errorf("released, but not recorded in the store (a restart of relayd would hold the pair again): %w", err)
	}
	return nil
}

// Holds lists the pairs held now, oldest hold first.
func (h *Hub) Holds() []store.Hold {
	h.holdMu.Lock()
	defer h.holdMu.Unlock()
	out := make([]store.Hold, 0, len(h.holds))
	for _, hd := range h.holds {
		out = append(out, hd)
	}
	slices.SortFunc(out, func(x, y store.Hold) int { return x.At.Compare(y.At) })
	return out
}

// enforce starts refusing hd's pair; false when it was held already.
func (h *Hub) enforce(hd store.Hold) bool {
	h.holdMu.Lock()
	defer h.holdMu.Unlock()
	if _, ok := h.holds[hd.Pair]; ok {
		return false
	}
	if h.holds == nil {
		h.holds = map[[2]string]store.Hold{}
	}
	h.holds[hd.Pair] = hd
	return true
}

// tellHeld gives both agents of pair the held notice: now if online, when
// they connect otherwise.
func (h *Hub) tellHeld(pair [2]string) {
	for i, id := range pair {
		other := pair[1-i]
		h.notify(&protocol.Held{Peer: other, On: true, Message: fmt.Sprintf("the relay's operator put you and %s on hold (your exchange "+
			"looked like a loop): the relay refuses your messages to each other until the operator releases the pair. Stop messaging %s; "+
			"ask your user if you need it.", other, other)}, id)
	}
}

// held refuses a send from `from` to any of targets that a Hold stops.
func (h *Hub) held(from string, targets []string, ref string) *protocol.Error {
	h.holdMu.Lock()
	defer h.holdMu.Unlock()
	if len(h.holds) == 0 {
		return nil
	}
	for _, to := range targets {
		if _, ok := h.holds[store.SortPair(from, to)]; ok {
			return &protocol.Error{Code: protocol.CodeRateLimited, Ref: ref, RetryAfterMS: time.Minute.Milliseconds(),
				Message: fmt.Sprintf("held, not delivered: the relay's operator has put %s ↔ %s on hold (their exchange looked like a loop); "+
					"stop messaging %s and ask your user — the operator will release the pair", from, to, to)}
		}
	}
	return nil
}
