package link

import (
	"context"
	"fmt"

	"github.com/claude-relay/claude-relay/protocol"
)

// SendRead tells the relay that this session's model was shown the
// messages with these ids (read receipts). There is no answer; offline it
// fails with ErrOffline and the caller reports again on the next
// connection.
func (l *Link) SendRead(ctx context.Context, ids []string) error {
	l.mu.Lock()
	conn := l.conn
	l.mu.Unlock()
	if conn == nil {
		return ErrOffline
	}
	for len(ids) > 0 {
		n := min(len(ids), protocol.MaxReadIDs)
		if err := l.write(ctx, conn, &protocol.Read{IDs: ids[:n]}); err != nil {
			return fmt.Errorf("report reads: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

// Receipts asks the relay what became of messages this session sent: one
// receipt per message and recipient (stored, delivered, read).
func (l *Link) Receipts(ctx context.Context, ids []string) ([]protocol.Receipt, error) {
	ref := NewRef()
	ans, err := l.Request(ctx, ref, &protocol.Receipts{Ref: ref, IDs: ids})
	if err != nil {
		return nil, err
	}
	r, ok := ans.(*protocol.Receipts)
	if !ok {
		return nil, fmt.Errorf("relay answered receipts with %s", ans.Type())
	}
	return r.Receipts, nil
}
