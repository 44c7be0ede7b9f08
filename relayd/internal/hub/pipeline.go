package hub

import (
	"context"
	"slices"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// Sends through a store that takes appends without making the caller wait
// for each commit (store.Pipeliner: the SQLite store). Two things depend on
// it:
//   - throughput: the connection's reader goes on to the next frame while
//     the store commits, so a client that pipelines its sends fills a group
//     commit on its own instead of paying one commit per message;
//   - exactly once across restarts: the store keeps each client's recent
//     send refs on disk, in the same transaction as the message, so a send
//     retried after relayd was killed between storing it and answering it
//     is answered with the first accepted, not stored a second time under
//     a new id (the hub's own ref window is memory and dies with the
//     process).

// sendPipelined handles a send from c through p. The accepted (or the
// error) reaches c's writer once the store has settled the send, and the
// answers of stored sends keep the order the sends were read in. An answer
// that needs no commit (a refusal, a retry the hub remembers, a send to
// unknown ids only) may overtake them: clients match answers by ref.
func (h *Hub) sendPipelined(ctx context.Context, c *Conn, s *protocol.Send, p store.Pipeliner) {
	sum := sendDigest(s)
	if acc := h.seenRef(c.id, s.Ref, sum); acc != nil {
		c.push(acc) // a retry of a send that went through
		return
	}
	r, perr := h.plan(ctx, c, s)
	if perr != nil {
		c.push(perr.Frame())
		return
	}
	ref := s.Ref
	if len(r.targets) == 0 { // every recipient unknown: nothing to store
		acc := h.finish(ref, r, nil, nil)
		h.rememberRef(c.id, ref, sum, acc)
		c.push(acc)
		return
	}
	p.AppendAsync(r.msg, r.targets, h.opts.MaxQueue, &store.SendRef{Ref: ref, Digest: sum},
		func(slots []store.Slot, dup *store.Sent, err error) {
			// On the store's committer: quick, and no store calls.
			if err != nil {
				c.push(h.storeFailed(c, ref, err).Frame())
				return
			}
			var acc *protocol.Accepted
			if dup != nil {
				acc = h.finish(ref, r.asRetryOf(dup), dup.Recipients, dup.Slots)
			} else {
				acc = h.finish(ref, r, r.targets, slots)
			}
			h.rememberRef(c.id, ref, sum, acc)
			c.push(acc)
			if dup == nil && h.hasWatchers() {
				// Mail events read the store: not on its committer.
				go h.notifyWatchers(context.Background(), r.targets)
			}
		})
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

func (h *Hub) hasWatchers() bool {
	h.conv.mu.Lock()
	defer h.conv.mu.Unlock()
	return len(h.conv.watchers) > 0
}
