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

// ReportRead is SendRead with a request right behind it that the relay
// answers only once it has recorded the reads (it handles a connection's
// frames in order; an empty receipts request is the cheapest such
// request). recorded waits for that answer; the caller does its own work
// meanwhile.
func (l *Link) ReportRead(ctx context.Context, ids []string) (recorded func(context.Context) error, err error) {
	if err := l.SendRead(ctx, ids); err != nil {
		return nil, err
	}
	ref := NewRef()
	answer, err := l.start(ctx, ref, &protocol.Receipts{Ref: ref})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		_, err := answer(ctx)
		return err
	}, nil
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
