package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

// How long relay_send waits for the peer list that tells each recipient's
// unread count: a courtesy, never worth delaying the answer much.
const attentionWait = time.Second

// StatusArgs are relay_status's parameters.
type StatusArgs struct {
	MessageID string `json:"message_id,omitempty" jsonschema:"id of a message you sent: show for each recipient whether it is stored, delivered to its session, or read by its model"`
}

// ReceiptOut is one recipient's state of a message, in relay_status's
// structured content.
type ReceiptOut struct {
	To          string     `json:"to"`
	State       string     `json:"state"`
	StoredAt    time.Time  `json:"stored_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	ReadAt      *time.Time `json:"read_at,omitempty"`
}

// MessageStateOutput is relay_status's structured content with message_id.
type MessageStateOutput struct {
	MessageID  string       `json:"message_id"`
	Recipients []ReceiptOut `json:"recipients"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func describeReceipt(now time.Time, r protocol.Receipt) string {
	switch r.State {
	case protocol.ReceiptRead:
		return "read " + ago(now, r.ReadAt)
	case protocol.ReceiptDelivered:
		s := "delivered to its session"
		if !r.DeliveredAt.IsZero() {
			s += " " + ago(now, r.DeliveredAt)
		}
		return s + ", not read yet"
	}
	return "stored at the relay, not yet delivered (the session is offline or catching up)"
}

// messageState answers relay_status message_id=…: the relay's receipts.
func (d *Deps) messageState(ctx context.Context, id string) (*MessageStateOutput, string, error) {
	if err := protocol.ValidateMessageID(id); err != nil {
		return nil, "", fmt.Errorf("message_id is not a message id (relay_send's result names it)")
	}
	rs, err := d.Link.Receipts(ctx, []string{id})
	if err != nil {
		st := d.Link.Status()
		if st.State != "connected" {
			return nil, "", fmt.Errorf("cannot ask the relay: %s", offlineHint(st))
		}
		return nil, "", fmt.Errorf("the relay did not answer: %v", err)
	}
	out := &MessageStateOutput{MessageID: id, Recipients: []ReceiptOut{}}
	if len(rs) == 0 {
		return out, fmt.Sprintf("No receipts for %s: it is not a message you sent, or its recipients cleared it, or it expired.", id), nil
	}
	now := d.Now()
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		out.Recipients = append(out.Recipients, ReceiptOut{To: r.To, State: r.State, StoredAt: r.StoredAt, DeliveredAt: optTime(r.DeliveredAt), ReadAt: optTime(r.ReadAt)})
		parts = append(parts, r.To+": "+describeReceipt(now, r))
	}
	return out, fmt.Sprintf("Message %s. %s.", id, strings.Join(parts, "; ")), nil
}

// PeerAttention is a recipient's attention as relay_send reports it.
type PeerAttention struct {
	ID       string     `json:"id"`
	Unread   int        `json:"unread"`
	LastRead *time.Time `json:"last_read,omitempty"`
}

// attentionOf returns, for the recipients online, how much mail they have
// not read and when they last read: a sender can tell a busy peer from one
// that reads. ps is the peer list the send brought back
// (link.SendWithPeers), or nil to ask for it now. Best effort: nothing if
// the relay does not answer quickly.
func (d *Deps) attentionOf(ctx context.Context, outs []protocol.Outcome, ps []protocol.Peer) ([]PeerAttention, string) {
	want := map[string]bool{}
	for _, o := range outs {
		if o.Status == protocol.StatusDelivered {
			want[o.ID] = true
		}
	}
	if len(want) == 0 {
		return nil, ""
	}
	if ps == nil {
		cctx, cancel := context.WithTimeout(ctx, attentionWait)
		defer cancel()
		var err error
		if ps, err = d.Link.RequestPeers(cctx); err != nil {
			return nil, ""
		}
	}
	now := d.Now()
	var out []PeerAttention
	var parts []string
	for _, p := range ps {
		if !want[p.ID] {
			continue
		}
		out = append(out, PeerAttention{ID: p.ID, Unread: p.Unread, LastRead: optTime(p.LastRead)})
		parts = append(parts, fmt.Sprintf("%s has %d unread, last read %s", p.ID, p.Unread, ago(now, p.LastRead)))
	}
	if len(parts) == 0 {
		return out, ""
	}
	return out, " " + strings.Join(parts, "; ") + ". relay_status message_id=… shows when it is read."
}

// peerAttention is relay_peers' note on one peer's reading.
func peerAttention(now time.Time, p protocol.Peer) string {
	if p.Unread == 0 && p.LastRead.IsZero() {
		return ""
	}
	return fmt.Sprintf(", %d unread, last read %s", p.Unread, ago(now, p.LastRead))
}
