package link

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/coder/websocket"
)

func readFrame(ctx context.Context, conn *websocket.Conn) (protocol.Frame, error) {
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageText {
			continue
		}
		f, err := relayLimits.Decode(data)
		if err != nil {
			return nil, &decodeError{err}
		}
		return f, nil
	}
}

type decodeError struct{ err error }

func (e *decodeError) Error() string { return "bad frame from relay: " + e.err.Error() }

func (l *Link) write(ctx context.Context, conn *websocket.Conn, f protocol.Frame) error {
	data, err := protocol.Encode(f)
	if err != nil {
		return err
	}
	// A write cut off by its context drops the connection (coder/websocket):
	// ctx ending lets a write in progress finish (within WriteTimeout), so
	// the goodbye that follows is a clean close.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.WriteTimeout)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, data)
}

// serve runs one welcomed connection: the read loop here, pings, acks and
// the outbox flush beside it, all ended together.
func (l *Link) serve(ctx context.Context, conn *websocket.Conn, w *protocol.Welcome) error {
	sctx, cancel := context.WithCancel(ctx)
	// The read loop reads with rctx, which outlives ctx: a read cut off by
	// its context drops the TCP connection, and the relay would log a lost
	// connection and tell everyone. When ctx ends, the goodbye below sends
	// a close frame and the read loop reads the relay's answer to it.
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			closeGently(conn, websocket.StatusNormalClosure, "session ended")
			rcancel()
		case <-served:
		}
	}()
	defer func() {
		close(served)
		cancel()
		l.mu.Lock()
		l.conn = nil
		for ref, ch := range l.pending {
			close(ch)
			delete(l.pending, ref)
		}
		l.mu.Unlock()
		if ctx.Err() == nil {
			conn.CloseNow() // also ends a ping waiting for its pong
		}
		wg.Wait() // when ctx ended, the goodbye is said by now
		conn.CloseNow()
		rcancel()
	}()

	l.mu.Lock()
	l.conn = conn
	l.connCtx = sctx
	l.server = w.Server
	if l.connected > 0 {
		l.reconnects++
	}
	l.connected++
	l.nextAttempt = time.Time{}
	clear(l.peers)
	clear(l.notices) // the relay tells the standing ones again after welcome
	for _, p := range w.Peers {
		l.peers[p.ID] = p
	}
	l.backlogLeft = w.Backlog
	l.caughtUp = make(chan struct{})
	if w.Backlog <= 0 {
		close(l.caughtUp)
	}
	l.setStateLocked(StateConnected, "")
	l.mu.Unlock()
	if w.Replaced != nil {
		l.log.Info("took over this id from an older connection", "host", w.Replaced.Host, "pid", w.Replaced.PID)
	}
	if held := l.cfg.Inbox.ResumeAfter(); held > w.LastSeq {
		// The relay never issued the seq held here: its store was reset.
		// Its backlog starts from 1 and arrives now; the resume point must
		// not stay above the new numbering, or a later resume would ack
		// (and skip) new mail.
		l.log.Warn("relay's mailbox was reset; resuming from its start", "held_seq", held, "relay_last_seq", w.LastSeq)
		if err := l.cfg.Inbox.ResetCursor(); err != nil {
			l.log.Error("could not reset the resume point", "err", err)
		}
	}
	l.log.Info("connected to relay", "url", l.URL(), "server", w.Server, "peers", len(w.Peers), "backlog", w.Backlog)

	wg.Add(3)
	go func() { defer wg.Done(); l.pingLoop(sctx, conn) }()
	go func() { defer wg.Done(); l.ackLoop(sctx, conn) }()
	go func() { defer wg.Done(); l.flushLoop(sctx) }()
	l.kick()

	// Provisional messages of this connection not yet confirmed; dropped
	// with it (the relay sends them again if they were committed).
	var unconfirmed []protocol.Message
	for {
		f, err := readFrame(rctx, conn)
		if err != nil {
			var de *decodeError
			if errors.As(err, &de) {
				l.log.Warn("ignoring a frame the relay sent", "err", de.err)
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return l.classifyClose(err)
		}
		switch m := f.(type) {
		case *protocol.Message:
			if m.Provisional {
				l.log.Debug("message held until the relay commits it", "id", m.ID, "seq", m.Seq)
				unconfirmed = append(unconfirmed, *m)
				continue
			}
			// Committed, and so is every seq before it (the relay acks
			// them first; this only guards the order).
			for len(unconfirmed) > 0 && unconfirmed[0].Seq < m.Seq {
				msg := unconfirmed[0]
				msg.Provisional = false
				unconfirmed = unconfirmed[1:]
				l.handle(&msg)
			}
		case *protocol.Ack:
			// The relay committed everything up to m.Upto: those are ours.
			n := 0
			for n < len(unconfirmed) && unconfirmed[n].Seq <= m.Upto {
				msg := unconfirmed[n]
				msg.Provisional = false
				l.handle(&msg)
				n++
			}
			unconfirmed = append(unconfirmed[:0], unconfirmed[n:]...)
			l.log.Debug("relay committed", "upto", m.Upto, "confirmed", n, "still_held", len(unconfirmed))
			continue
		}
		l.handle(f)
	}
}

func closeGently(conn *websocket.Conn, code websocket.StatusCode, reason string) {
	done := make(chan struct{})
	go func() { conn.Close(code, reason); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		conn.CloseNow()
	}
}

func (l *Link) handle(f protocol.Frame) {
	switch f := f.(type) {
	case *protocol.Message:
		added, err := l.cfg.Inbox.Add(*f)
		l.log.Debug("message in the inbox", "id", f.ID, "seq", f.Seq, "new", len(added))
		l.countBacklog()
		if err != nil {
			l.log.Error("could not store a message; it stays unacked on the relay", "id", f.ID, "err", err)
			return
		}
		if f.Seq > 0 {
			select {
			case l.ackCh <- f.Seq:
			default:
				<-l.ackCh // drop the older pending value; the newer seq covers it
				select {
				case l.ackCh <- f.Seq:
				default:
				}
			}
		}
		if len(added) > 0 && l.cfg.OnMessages != nil {
			l.cfg.OnMessages(added)
		}
	case *protocol.Presence:
		l.mu.Lock()
		if f.Event != protocol.PresenceLeft { // joined, or a new status
			l.peers[f.Peer.ID] = f.Peer
		} else {
			delete(l.peers, f.Peer.ID)
		}
		l.mu.Unlock()
		if l.cfg.OnPresence != nil {
			l.cfg.OnPresence(*f)
		}
	case *protocol.Mail:
		if l.cfg.OnMail != nil {
			l.cfg.OnMail(*f)
		}
	case protocol.Notice:
		l.mu.Lock()
		if f.NoticeText() == "" {
			delete(l.notices, f.NoticeSubject())
		} else {
			l.notices[f.NoticeSubject()] = f.NoticeText()
		}
		l.mu.Unlock()
		l.log.Info("notice from the relay", "subject", f.NoticeSubject(), "text", f.NoticeText())
	default:
		ref := protocol.RefOf(f) // an answer to a request of ours
		if ref == "" {
			if ef, ok := f.(*protocol.ErrorFrame); ok {
				l.log.Warn("relay reported an error", "code", ef.Code, "message", ef.Message)
			}
			return
		}
		l.mu.Lock()
		ch := l.pending[ref]
		delete(l.pending, ref)
		l.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	}
}

// ackLoop acks the newest seq once the inbox is durable.
func (l *Link) ackLoop(ctx context.Context, conn *websocket.Conn) {
	for {
		select {
		case <-ctx.Done():
			return
		case seq := <-l.ackCh:
			if err := l.cfg.Inbox.Sync(); err != nil {
				l.log.Error("could not sync the inbox; not acking", "err", err)
				continue
			}
			if err := l.write(ctx, conn, &protocol.Ack{Upto: seq}); err != nil {
				return
			}
		}
	}
}

func (l *Link) pingLoop(ctx context.Context, conn *websocket.Conn) {
	measure := func() bool {
		// Not cut off by ctx: a ping write cut off by its context drops the
		// connection (coder/websocket), which would spoil the goodbye. The
		// wait for the pong ends when the goodbye closes the connection.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		start := time.Now()
		if err := conn.Ping(pctx); err != nil {
			if ctx.Err() == nil {
				l.log.Warn("relay did not answer a ping; reconnecting", "err", err)
				conn.CloseNow()
			}
			return false
		}
		l.mu.Lock()
		l.lastRTT = time.Since(start)
		l.mu.Unlock()
		return true
	}
	if !measure() {
		return
	}
	t := time.NewTicker(l.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !measure() {
				return
			}
		}
	}
}
