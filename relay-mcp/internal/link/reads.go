package link

import (
	"context"
	"fmt"
	"sync"

	"github.com/claude-relay/claude-relay/protocol"
)

// readsKept bounds the ids a connection remembers having reported: past
// it the record starts again, and an id reported again costs the relay a
// write that changes nothing.
const readsKept = 8192

// reads is what this process reported read on the current connection.
// relay_receive reports what it shows, and Watch (package tools) reports
// whatever the inbox says was read, by relay_receive or by a hook in
// another process: without this record each message read went to the
// relay twice, and each report is a commit there.
type reads struct {
	mu   sync.Mutex // held across the write: see SendRead
	conn int        // Link.connected when sent was begun
	sent map[string]bool
}

// SendRead tells the relay that this session's model was shown the
// messages with these ids (read receipts); ids already reported on this
// connection are left out. There is no answer; offline it fails with
// ErrOffline and the caller reports again on the next connection.
//
// Reports are written one caller at a time: a caller that finds its ids
// reported by another has them on the wire before anything it writes
// next, which ReportRead's confirmation relies on.
func (l *Link) SendRead(ctx context.Context, ids []string) error {
	l.reads.mu.Lock()
	defer l.reads.mu.Unlock()
	l.mu.Lock()
	conn, gen := l.conn, l.connected
	l.mu.Unlock()
	if conn == nil {
		return ErrOffline
	}
	r := &l.reads
	if r.conn != gen || len(r.sent) > readsKept {
		r.conn, r.sent = gen, map[string]bool{}
	}
	todo := make([]string, 0, len(ids))
	for _, id := range ids {
		if !r.sent[id] {
			todo = append(todo, id)
		}
	}
	for len(todo) > 0 {
		n := min(len(todo), protocol.MaxReadIDs)
		if err := l.write(ctx, conn, &protocol.Read{IDs: todo[:n]}); err != nil {
			return fmt.Errorf("report reads: %w", err)
		}
		for _, id := range todo[:n] {
			r.sent[id] = true
		}
		todo = todo[n:]
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
	r, err := ask[*protocol.Receipts](ctx, l, ref, &protocol.Receipts{Ref: ref, IDs: ids})
	if err != nil {
		return nil, err
	}
	return r.Receipts, nil
}
