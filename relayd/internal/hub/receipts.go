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

// receipts answers a receipts request: the state of c's own messages in
// every mailbox that still holds them.
func (h *Hub) receipts(ctx context.Context, c *Conn, f *protocol.Receipts) protocol.Frame {
	if len(f.IDs) == 0 {
		return &protocol.Receipts{Ref: f.Ref}
	}
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
