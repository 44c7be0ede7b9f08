package link

import (
	"context"
	"fmt"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
)

// NewRef returns a fresh request ref (unique across processes and restarts).
func NewRef() string { return inbox.NewRef() }

// Request sends a request frame carrying ref and waits for the answer with
// the same ref. An error frame becomes a *RelayError.
func (l *Link) Request(ctx context.Context, ref string, f protocol.Frame) (protocol.Frame, error) {
	answer, err := l.start(ctx, ref, f)
	if err != nil {
		return nil, err
	}
	return answer(ctx)
}

// start writes a request frame carrying ref; answer waits for the relay's
// answer with the same ref. Requests started one after another go out in
// that order on one connection, and the relay handles a connection's
// frames in order: a second request need not wait for the first's answer.
func (l *Link) start(ctx context.Context, ref string, f protocol.Frame) (answer func(context.Context) (protocol.Frame, error), err error) {
	l.mu.Lock()
	conn, cctx := l.conn, l.connCtx
	if conn == nil {
		l.mu.Unlock()
		return nil, ErrOffline
	}
	ch := make(chan protocol.Frame, 1)
	l.pending[ref] = ch
	l.mu.Unlock()
	forget := func() {
		l.mu.Lock()
		delete(l.pending, ref)
		l.mu.Unlock()
	}
	if err := l.write(ctx, conn, f); err != nil {
		forget()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, ErrOffline
	}
	return func(ctx context.Context) (protocol.Frame, error) {
		select {
		case ans, ok := <-ch:
			if !ok {
				return nil, ErrDisconnected
			}
			if ef, isErr := ans.(*protocol.ErrorFrame); isErr {
				return nil, &RelayError{ef}
			}
			return ans, nil
		case <-cctx.Done():
			return nil, ErrDisconnected
		case <-ctx.Done():
			forget()
			return nil, ctx.Err()
		}
	}, nil
}

// ask sends req (whose ref is ref) and returns the relay's answer, which
// must be a T; an error frame comes back as the *RelayError Request gives.
func ask[T protocol.Frame](ctx context.Context, l *Link, ref string, req protocol.Frame) (T, error) {
	var zero T
	ans, err := l.Request(ctx, ref, req)
	if err != nil {
		return zero, err
	}
	a, ok := ans.(T)
	if !ok {
		return zero, fmt.Errorf("relay answered %s with %s", req.Type(), ans.Type())
	}
	return a, nil
}

// Peers asks the relay who is online.
func (l *Link) RequestPeers(ctx context.Context) ([]protocol.Peer, error) {
	ref := NewRef()
	p, err := ask[*protocol.Peers](ctx, l, ref, &protocol.Peers{Ref: ref})
	if err != nil {
		return nil, err
	}
	return p.Peers, nil
}

// Sessions asks the relay for every session it knows.
func (l *Link) Sessions(ctx context.Context) ([]protocol.Session, error) {
	ref := NewRef()
	s, err := ask[*protocol.Sessions](ctx, l, ref, &protocol.Sessions{Ref: ref})
	if err != nil {
		return nil, err
	}
	return s.Sessions, nil
}

// Clear asks the relay to forget this client's read history.
func (l *Link) Clear(ctx context.Context, includeUnread bool) (int, error) {
	ref := NewRef()
	c, err := ask[*protocol.Cleared](ctx, l, ref, &protocol.Clear{Ref: ref, IncludeUnread: includeUnread})
	if err != nil {
		return 0, err
	}
	return c.Cleared, nil
}

// History asks the relay for a page of past messages.
func (l *Link) History(ctx context.Context, q protocol.History) (*protocol.History, error) {
	q.Ref = NewRef()
	q.Messages, q.More = nil, false
	return ask[*protocol.History](ctx, l, q.Ref, &q)
}
