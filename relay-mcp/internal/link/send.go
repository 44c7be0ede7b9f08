package link

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

// SendResult is what became of a send.
type SendResult struct {
	Accepted *protocol.Accepted // the relay took it
	Queued   bool               // held in the outbox, sent in order when the relay is back
	Behind   int                // sends queued before this one
	Reason   string             // why it was queued
	Err      error              // refused (a *RelayError) or could not be queued
	// Peers is the relay's peer list as of this send, with each peer's
	// unread count (SendWithPeers); nil when not asked for, when the send
	// was queued or refused, or when the answer did not come in time.
	Peers []protocol.Peer
}

// flushWait is how long a send that joins a non-empty outbox while connected
// waits for its turn before answering "queued".
const flushWait = 3 * time.Second

func (l *Link) online() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn != nil
}

// Send delivers s through the relay. When the relay is unreachable, or
// earlier sends are still queued (order is kept), s goes to the outbox.
//
// s gets its ref here, once (unless the caller gave one), and keeps it: a
// send whose connection dropped before its accepted arrived goes to the
// outbox with the same ref, persisted, and the flush after the reconnect —
// in this process or a restarted one — resends it with that ref. The relay
// recognises the ref and content and answers with the original accepted
// instead of delivering it a second time.
func (l *Link) Send(ctx context.Context, s protocol.Send) SendResult {
	return l.send(ctx, s, -1)
}

// SendWithPeers is Send that also asks for the peer list, with a peers
// request written right behind the send on the same connection: the relay
// answers it once the connection's sends are stored, so each recipient's
// unread count includes this message, and both answers come in one round
// trip. It waits at most peersWait for the list after the accepted.
func (l *Link) SendWithPeers(ctx context.Context, s protocol.Send, peersWait time.Duration) SendResult {
	return l.send(ctx, s, peersWait)
}

// send is Send, asking for the peer list too when peersWait >= 0.
func (l *Link) send(ctx context.Context, s protocol.Send, peersWait time.Duration) SendResult {
	if s.Ref == "" {
		s.Ref = NewRef()
	}
	ob := l.cfg.Outbox
	reason := "relay offline"
	refused := false // the relay stored nothing just now; the outbox retries
	if l.Status().State == StateConnecting {
		reason = "still connecting to the relay"
	}
	if l.online() && (ob == nil || ob.Len() == 0) {
		var ans protocol.Frame
		answer, err := l.start(ctx, s.Ref, &s)
		var peers func(context.Context) (protocol.Frame, error)
		if err == nil && peersWait >= 0 {
			ref := NewRef()
			peers, _ = l.start(ctx, ref, &protocol.Peers{Ref: ref})
		}
		if err == nil {
			ans, err = answer(ctx)
		}
		switch {
		case err == nil:
			if a, ok := ans.(*protocol.Accepted); ok {
				return SendResult{Accepted: a, Peers: peerList(ctx, peers, peersWait)}
			}
			return SendResult{Err: fmt.Errorf("relay answered send with %s", ans.Type())}
		case errors.Is(err, ErrOffline):
		case errors.Is(err, ErrDisconnected):
			// It may have reached the relay. The resend carries the same
			// ref, so the relay delivers it once either way.
			reason = "connection to the relay dropped while sending"
		case isStoreUnavailable(err) && ob != nil:
			// Nothing was stored, and the relay expects to store again
			// soon: a cluster electing a new stream leader after a node
			// died, a disk that filled up. The outbox retries it.
			reason, refused = "the relay could not store it just now ("+err.Error()+"); it is retried", true
		default:
			return SendResult{Err: err}
		}
	}
	if ob == nil {
		return SendResult{Err: ErrOffline}
	}
	if l.Status().State == StateStopped {
		return SendResult{Err: fmt.Errorf("not sent: %s", l.Status().StopReason)}
	}
	ch := make(chan SendResult, 1)
	l.mu.Lock()
	l.waiters[s.Ref] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.waiters, s.Ref)
		l.mu.Unlock()
	}()
	behind := ob.Len()
	if _, err := ob.Push(s); err != nil {
		return SendResult{Err: err}
	}
	if !l.online() {
		return SendResult{Queued: true, Behind: behind, Reason: reason}
	}
	l.kick()
	t := time.NewTimer(flushWait)
	defer t.Stop()
	select {
	case r := <-ch:
		return r
	case <-t.C:
	case <-ctx.Done():
	}
	if refused {
		return SendResult{Queued: true, Behind: behind, Reason: reason}
	}
	return SendResult{Queued: true, Behind: behind, Reason: "waiting behind earlier queued messages"}
}

func isStoreUnavailable(err error) bool {
	var re *RelayError
	return errors.As(err, &re) && re.Frame.Code == protocol.CodeStoreUnavailable
}

// peerList waits at most wait for the answer to a peers request.
func peerList(ctx context.Context, answer func(context.Context) (protocol.Frame, error), wait time.Duration) []protocol.Peer {
	if answer == nil {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if ans, err := answer(pctx); err == nil {
		if p, ok := ans.(*protocol.Peers); ok {
			return p.Peers
		}
	}
	return nil
}

func (l *Link) kick() {
	select {
	case l.kickFlush <- struct{}{}:
	default:
	}
}

func (l *Link) settle(ref string, r SendResult) {
	l.mu.Lock()
	ch := l.waiters[ref]
	l.mu.Unlock()
	if ch != nil {
		select {
		case ch <- r:
		default:
		}
	}
}

func transient(code protocol.Code) bool {
	switch code {
	case protocol.CodeRateLimited, protocol.CodeStoreUnavailable, protocol.CodeInternal:
		return true
	}
	return false
}

// flushLoop sends the outbox in order while the connection lasts.
func (l *Link) flushLoop(ctx context.Context) {
	ob := l.cfg.Outbox
	if ob == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kickFlush:
		}
		for {
			p, ok := ob.Peek()
			if !ok {
				break
			}
			ans, err := l.Request(ctx, p.Send.Ref, &p.Send)
			var re *RelayError
			switch {
			case err == nil:
				a, _ := ans.(*protocol.Accepted)
				ob.Remove(p.Send.Ref)
				if a != nil {
					l.log.Info("sent a queued message", "id", a.ID, "queued_at", p.QueuedAt)
				}
				l.settle(p.Send.Ref, SendResult{Accepted: a})
			case errors.As(err, &re) && transient(re.Frame.Code):
				d := time.Duration(re.Frame.RetryAfterMS) * time.Millisecond
				if d <= 0 {
					d = time.Second
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			case errors.As(err, &re):
				ob.Remove(p.Send.Ref)
				l.log.Warn("relay refused a queued message; dropped it", "to", p.Send.To, "err", err)
				l.mu.Lock()
				l.lastErr = "a queued message was refused: " + err.Error()
				l.mu.Unlock()
				l.settle(p.Send.Ref, SendResult{Err: err})
			default:
				return // disconnected: the next connection flushes
			}
		}
	}
}
