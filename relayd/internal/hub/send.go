package hub

import (
	"context"
	"slices"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// The send path, one for every store.
//
// The hub plans a send (recipients, id), submits it to the store, and goes
// on to the client's next frame. The store assigns the recipients' seqs at
// once and commits in the background (group commit: a client that
// pipelines its sends fills a whole commit on its own). Two things happen
// side by side:
//
//   - hand-off: the online recipients are woken at once. A connection
//     whose client said hello with provisional reads the message from the
//     store's memory before its commit and gets it marked provisional;
//     once the commit is done its writer says so with an ack frame
//     (relay → client). Other v1 clients read it once committed. Clients
//     of the older protocol get it at once (they have no seq to resume
//     from), and their auto-ack counts only committed seqs (the store
//     clamps an ack to what it committed).
//   - commit: when the store has made the message durable, the sender gets
//     accepted. Exactly once across a crash: the store keeps each client's
//     recent send refs in the same transaction as the message, so a send
//     retried after relayd was killed between storing it and answering it
//     is answered with the first accepted; and a send lost in the crash
//     before its commit was only ever provisional at its recipients, who
//     dropped it with the connection, so its retry (a new id) is the only
//     copy they keep.
//
// If a commit fails, or the store finds the send was a retry after it had
// handed the message off, the provisional copies are withdrawn by closing
// the provisional connections that may hold them (1001): the clients
// reconnect and resume from what the relay confirmed.
//
// Who writes: each connection has a writer goroutine, which batches what
// piles up for it. A lone send (its client has nothing else in flight, as
// an agent's send or a round trip) is written by the sender's own reader
// instead, to each recipient whose writer is idle and whose socket has
// room, and its accepted to the sender's socket likewise (Conn.wakeHere):
// on a busy machine the hand-off to another goroutine was most of a round
// trip's latency. The reader does so only where no store's committer
// waits on it: when the store commits on the sender's goroutine
// (Submitted.OnCaller: the journal store's leader, the memory store).

// sendMsg handles a send from c. The accepted (or the error) reaches c's
// writer once the store has settled the send, and the answers of stored
// sends keep the order the sends were read in. An answer that needs no
// commit (a refusal, a retry the hub remembers, a send to unknown ids only)
// may overtake them: clients match answers by ref.
//
// A client of the older protocol has no refs (its codec numbers the sends
// of each connection), so none of its sends can be a retry: they are
// neither looked up nor remembered, in the hub or in the store.
func (h *Hub) sendMsg(ctx context.Context, c *Conn, s *protocol.Send) {
	retriable := !c.peer.Legacy
	var sum [32]byte
	if retriable {
		sum = sendDigest(s)
		if acc := h.seenRef(c.id, s.Ref, sum); acc != nil {
			c.pushHere(acc) // a retry of a send that went through
			return
		}
	}
	r, perr := h.plan(ctx, c, s)
	if perr != nil {
		c.push(perr.Frame())
		return
	}
	ref := s.Ref
	if len(r.targets) == 0 { // every recipient unknown: nothing to store
		acc := h.finish(ref, r, nil, nil, false)
		if retriable {
			h.rememberRef(c.id, ref, sum, acc)
		}
		c.pushHere(acc)
		return
	}
	var sref *store.SendRef
	if retriable {
		sref = &store.SendRef{Ref: ref, Digest: sum}
	}
	c.sendStarted()
	// A lone send (the client has no other in flight and no next frame
	// read already, as an agent's send or a round trip's) is written to
	// its recipients and its sender by the sender's reader itself where it
	// can be (Conn.wakeHere): no hand-off to their writers. A client that
	// pipelines its sends leaves the writing to the writers, which batch.
	lone := c.sends.count() == 1 && (c.readAhead == nil || !c.readAhead())
	slots, early := h.store.Submit(r.msg, r.targets, h.opts.MaxQueue, sref,
		func(res store.Submitted) {
			defer c.sendSettled()
			// On the store's committer (or in Submit: OnCaller): quick,
			// and no store calls but on the caller's goroutine.
			here := lone && res.OnCaller
			if res.Early && (res.Err != nil || res.Dup != nil) {
				h.withdraw(r.targets, res.Slots)
			}
			if res.Err != nil {
				c.push(h.storeFailed(c, ref, res.Err).Frame())
				return
			}
			// Who watches is read before the sender hears: a watch set
			// up after the accepted counts this message in its first
			// announcement, and must not hear of it again.
			notify := res.Dup == nil && h.hasWatchers()
			var acc *protocol.Accepted
			if res.Dup != nil {
				acc = h.finish(ref, r.asRetryOf(res.Dup), res.Dup.Recipients, res.Dup.Slots, here)
			} else {
				acc = h.finish(ref, r, r.targets, res.Slots, here)
			}
			push := c.push
			if here {
				push = c.pushHere
			}
			if retriable {
				h.rememberRef(c.id, ref, sum, acc)
				push(acc)
			} else if !allStored(acc) {
				push(acc)
			}
			if notify {
				// Mail events read the store: not on its committer.
				h.queueMailEvents(r.targets)
			}
		})
	// When done ran in Submit (OnCaller), finish has written the message
	// already and this wakes the recipients' writers to find nothing.
	// Skipping it measured slower, not faster: echo p50 up by a third,
	// with more CPU and more context switches a round trip (perf stat) —
	// the woken goroutine keeps a runtime thread spinning, which then
	// takes the next frame from the network poller without a thread
	// wake-up.
	if early {
		h.handOff(r.targets, slots)
	}
}

// allStored reports whether every recipient of a got the message. A
// client of the older protocol hears of its send only when one did not
// (legacy.Codec writes nothing else for an accepted): its accepted is not
// queued at all, so a sender that writes without waiting does not wake
// its writer for every message, nor fill its queue with frames the
// writer would drop.
func allStored(a *protocol.Accepted) bool {
	for _, o := range a.Recipients {
		if o.Status != protocol.StatusDelivered && o.Status != protocol.StatusQueued {
			return false
		}
	}
	return true
}

// handOff wakes the online recipients that got a seq: their writers read
// the message before its commit when they may. (Writing them on the
// sender's reader here, as finish does for a lone send committed on it,
// measured no faster on the SQLite store: its commit still wakes the
// writers for the ack and the accepted.)
func (h *Hub) handOff(targets []string, slots []store.Slot) {
	h.mu.Lock()
	var wake []*Conn
	for i, id := range targets {
		if i < len(slots) && slots[i].Seq > 0 {
			if c := h.conns[id]; c != nil && (c.provisional || c.peer.Legacy) {
				wake = append(wake, c)
			}
		}
	}
	h.mu.Unlock()
	for _, c := range wake {
		c.wake()
	}
}

// withdraw closes the provisional connections among targets: a message
// they may hold provisionally will not be committed. Clients of the older
// protocol cannot be told; they keep what they were written, and their
// cursor goes back before the seq, which the store may give again.
func (h *Hub) withdraw(targets []string, slots []store.Slot) {
	h.mu.Lock()
	var kick []*Conn
	for i, id := range targets {
		c := h.conns[id]
		switch {
		case c == nil:
		case c.provisional:
			kick = append(kick, c)
		case c.early && i < len(slots) && slots[i].Seq > 0:
			c.mu.Lock()
			c.sent = min(c.sent, slots[i].Seq-1)
			c.mu.Unlock()
		}
	}
	h.mu.Unlock()
	for _, c := range kick {
		h.log.Warn("withdrawing provisional messages: closing the connection so the client resumes from what is committed", "client", c.id)
		c.kick(protocol.CloseGoingAway, "the relay could not commit a message it had sent you provisionally; reconnect to resume")
	}
}

// asRetryOf is r answered as the send the store already holds: that
// message's id and time, and its recipients (a broadcast went to those
// online then; an id that was not offered the first time is not now).
func (r *routing) asRetryOf(dup *store.Sent) *routing {
	out := &routing{msg: r.msg}
	out.msg.ID, out.msg.TS = dup.ID, dup.TS
	if protocol.Recipients(r.msg.To).IsBroadcast() {
		for _, id := range dup.Recipients {
			out.outcomes = append(out.outcomes, protocol.Outcome{ID: id})
		}
		return out
	}
	out.outcomes = slices.Clone(r.outcomes)
	for i := range out.outcomes {
		if !slices.Contains(dup.Recipients, out.outcomes[i].ID) {
			out.outcomes[i].Status = protocol.StatusUnknown
		}
	}
	return out
}

// queueMailEvents has the watchers of recipients told, off the store's
// committer, by one goroutine at a time so that the events keep the order
// of the commits.
func (h *Hub) queueMailEvents(recipients []string) {
	h.mailMu.Lock()
	h.mailQ = append(h.mailQ, recipients)
	if h.mailActive {
		h.mailMu.Unlock()
		return
	}
	h.mailActive = true
	h.mailMu.Unlock()
	go func() {
		for {
			h.mailMu.Lock()
			if len(h.mailQ) == 0 {
				h.mailActive = false
				h.mailMu.Unlock()
				return
			}
			next := h.mailQ[0]
			h.mailQ = h.mailQ[1:]
			h.mailMu.Unlock()
			h.notifyWatchers(context.Background(), next)
		}
	}()
}

func (h *Hub) hasWatchers() bool {
	h.statusWatch.mu.Lock()
	defer h.statusWatch.mu.Unlock()
	return len(h.statusWatch.watchers) > 0
}

// sendWait stores a send from a sender without a connection (the operator
// at the console) and waits for its commit: the one caller that answers
// in line, on the same path as every send.
func (h *Hub) sendWait(ctx context.Context, from *Conn, s *protocol.Send) (*protocol.Accepted, *protocol.Error) {
	r, perr := h.plan(ctx, from, s)
	if perr != nil {
		return nil, perr
	}
	if len(r.targets) == 0 {
		return h.finish(s.Ref, r, nil, nil, false), nil
	}
	ch := make(chan store.Submitted, 1)
	slots, early := h.store.Submit(r.msg, r.targets, h.opts.MaxQueue, nil, func(res store.Submitted) {
		if res.Early && res.Err != nil {
			h.withdraw(r.targets, res.Slots)
		}
		ch <- res
	})
	if early {
		h.handOff(r.targets, slots)
	}
	res := <-ch // the commit is bounded by the store, not by ctx: its outcome must be told
	if res.Err != nil {
		return nil, h.storeFailed(from, s.Ref, res.Err)
	}
	acc := h.finish(s.Ref, r, r.targets, res.Slots, false)
	h.notifyWatchers(ctx, r.targets)
	return acc, nil
}
