package hub

import (
	"context"

	"github.com/claude-relay/claude-relay/protocol"
)

// Read receipts: a client reports which messages its model was shown (read
// frames); a sender asks what became of its messages (receipts frames) and
// sees each peer's unread count in the peer list. Every store records
// them.

// markRead records a read report from c. It has no answer; a failure is
// logged (the sender just sees "delivered" a while longer).
func (h *Hub) markRead(ctx context.Context, c *Conn, ids []string, upto uint64) {
	if _, err := h.store.MarkRead(ctx, c.id, ids, upto, h.opts.Now().UTC()); err != nil {
		h.log.Warn("read not recorded", "client", c.id, "err", err)
	}
}

// markReadLater records a read report from c in the background: the
// client's next frame is read at once (relay-mcp writes a request right
// behind its report and answers its model when that is answered), not
// after a commit. What reads the read state — receipts, the peer list's
// unread counts — first waits for the reports begun before it, so a
// sender who asks once the reader has its answer sees the messages read.
func (h *Hub) markReadLater(c *Conn, ids []string, upto uint64) {
	at := h.opts.Now().UTC()
	h.reads.begin()
	go func() {
		defer h.reads.end()
		// The connection may end meanwhile; its report still counts.
		if _, err := h.store.MarkRead(context.Background(), c.id, ids, upto, at); err != nil {
			h.log.Warn("read not recorded", "client", c.id, "err", err)
		}
		h.emit(Event{Kind: EventStage, Client: c.id})
	}()
}

// receipts answers a receipts request: the state of c's own messages in
// every mailbox that still holds them.
func (h *Hub) receipts(ctx context.Context, c *Conn, f *protocol.Receipts) protocol.Frame {
	if len(f.IDs) == 0 {
		return &protocol.Receipts{Ref: f.Ref}
	}
	h.reads.wait(ctx)
	rs, err := h.store.Receipts(ctx, c.id, f.IDs)
	if err != nil {
		return storeError(f.Ref, err)
	}
	out := &protocol.Receipts{Ref: f.Ref, IDs: f.IDs, Receipts: make([]protocol.Receipt, len(rs))}
	for i, x := range rs {
		pr := protocol.Receipt{ID: x.MsgID, To: x.To, State: protocol.ReceiptStored, StoredAt: x.Stored, DeliveredAt: x.Delivered, ReadAt: x.Read}
		switch {
		case !x.Read.IsZero():
			pr.State = protocol.ReceiptRead
		case x.DeliveredOK:
			pr.State = protocol.ReceiptDelivered
		}
		out.Receipts[i] = pr
	}
	return out
}

// peersWithReads is the peer list with each peer's unread count and last
// read, when the store keeps them.
func (h *Hub) peersWithReads(ctx context.Context) []protocol.Peer {
	ps := h.Peers()
	if len(ps) == 0 {
		return ps
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	h.reads.wait(ctx)
	st, err := h.store.ReadStates(ctx, ids)
	if err != nil {
		h.log.Warn("could not read unread counts", "err", err)
		return ps
	}
	for i := range ps {
		if s, ok := st[ps[i].ID]; ok {
			ps[i].Unread, ps[i].LastRead = s.Unread, s.LastRead
		}
	}
	return ps
}
