package server

import (
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

func receiptStates(t *testing.T, c *client, ids ...string) map[string]string {
	t.Helper()
	c.send(&protocol.Receipts{Ref: "q", IDs: ids})
	rs := expect[*protocol.Receipts](c)
	out := map[string]string{}
	for _, r := range rs.Receipts {
		out[r.ID[len(r.ID)-4:]+"→"+r.To] = r.State
	}
	return out
}

func peerOf(t *testing.T, c *client, id string) protocol.Peer {
	t.Helper()
	c.send(&protocol.Peers{Ref: "p"})
	for _, p := range expect[*protocol.Peers](c).Peers {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("%s not in peers", id)
	return protocol.Peer{}
}

// A sender tells stored from delivered from read: the recipient's ack
// makes a message delivered, its read frame makes it read; peers shows the
// recipient's unread count and last read. Older-protocol clients read what
// they hold.
func TestReadReceipts(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind)
		a, _ := r.connect("A", 0)
		b, _ := r.connect("B", 0)
		old := r.connectLegacy("OLD", "")
		expect[*protocol.Presence](a) // B joined
		expect[*protocol.Presence](a) // OLD joined
		expect[*protocol.Presence](b) // OLD joined

		a.send(&protocol.Send{Ref: "1", To: protocol.Recipients{"B", "OLD"}, Body: "one"})
		acc := expect[*protocol.Accepted](a)
		m := expect[*protocol.Message](b)
		old.nextOfType("message")
		id := acc.ID
		k := id[len(id)-4:]

		// OLD's writer acks (and so reads) as it writes; B has not acked yet.
		waitFor(t, "OLD to read", func() bool { return receiptStates(t, a, id)[k+"→OLD"] == protocol.ReceiptRead })
		if st := receiptStates(t, a, id); st[k+"→B"] != protocol.ReceiptStored {
			t.Fatalf("before ack: %v", st)
		}
		if p := peerOf(t, a, "B"); p.Unread != 1 || !p.LastRead.IsZero() {
			t.Fatalf("B before reading: %+v", p)
		}
		b.send(&protocol.Ack{Upto: m.Seq})
		waitFor(t, "B delivered", func() bool { return receiptStates(t, a, id)[k+"→B"] == protocol.ReceiptDelivered })
		before := time.Now().Add(-time.Second)
		b.send(&protocol.Read{IDs: []string{id}})
		waitFor(t, "B read", func() bool { return receiptStates(t, a, id)[k+"→B"] == protocol.ReceiptRead })
		if p := peerOf(t, a, "B"); p.Unread != 0 || p.LastRead.Before(before) {
			t.Fatalf("B after reading: %+v", p)
		}
		a.send(&protocol.Receipts{Ref: "q", IDs: []string{id}})
		for _, x := range expect[*protocol.Receipts](a).Receipts {
			if x.To == "B" && (x.StoredAt.IsZero() || x.DeliveredAt.IsZero() || x.ReadAt.Before(x.DeliveredAt)) {
				t.Fatalf("times: %+v", x)
			}
		}
		// Only the sender sees a message's receipts.
		b.send(&protocol.Receipts{Ref: "q", IDs: []string{id}})
		if rs := expect[*protocol.Receipts](b); len(rs.Receipts) != 0 {
			t.Fatalf("B sees A's receipts: %+v", rs)
		}
		// A read naming nothing is refused, the connection stays.
		b.writeText(`{"type":"read"}`)
		if e := expect[*protocol.ErrorFrame](b); e.Code != protocol.CodeMissingField {
			t.Fatalf("empty read: %+v", e)
		}
		if p := peerOf(t, b, "A"); p.Unread != 0 {
			t.Fatalf("A: %+v", p)
		}
	})
}
