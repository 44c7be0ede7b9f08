package link

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

func (l *Link) setState(s State, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setStateLocked(s, why)
}

func (l *Link) setStateLocked(s State, why string) {
	if l.state == StateStopped || l.state == StateClosed {
		return
	}
	if s == StateStopped {
		l.stopReason = why
	}
	if why != "" && s != StateConnected {
		l.lastErr = why
	}
	l.state = s
	l.since = time.Now()
	close(l.stateCh)
	l.stateCh = make(chan struct{})
}

// StateChanged returns a channel closed at the next state change.
func (l *Link) StateChanged() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stateCh
}

// Status returns a snapshot.
func (l *Link) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{
		State: l.state, URL: l.cfg.URLs[l.cur], ClientID: l.cfg.Hello.ClientID, Server: l.server,
		Since: l.since, Reconnects: l.reconnects, LastRTT: l.lastRTT, LastError: l.lastErr,
		StopReason: l.stopReason, StopCode: l.stopCode, NextAttempt: l.nextAttempt,
		Refused: l.refused,
	}
	if l.cfg.Outbox != nil {
		st.Outbox = l.cfg.Outbox.Len()
	}
	if len(l.cfg.URLs) > 1 {
		st.URLs = l.cfg.URLs
	}
	for _, subject := range slices.Sorted(maps.Keys(l.notices)) {
		st.Notices = append(st.Notices, l.notices[subject])
	}
	return st
}

// Peers returns the peers online as last reported by the relay, by id.
func (l *Link) Peers() []protocol.Peer {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]protocol.Peer, 0, len(l.peers))
	for _, p := range l.peers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// countBacklog counts one message of the welcome backlog as stored (or
// given up on), and marks the connection caught up after the last.
func (l *Link) countBacklog() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.backlogLeft > 0 {
		l.backlogLeft--
		if l.backlogLeft == 0 {
			close(l.caughtUp)
		}
	}
}

// CaughtUp returns a channel closed once the current connection's welcome
// backlog is in the inbox, or nil when the link is not connected.
func (l *Link) CaughtUp() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != StateConnected {
		return nil
	}
	return l.caughtUp
}

// FirstConnectWait is how long WaitFirstAttempt waits at most: a tool
// called in the first moments of a session waits for the connection under
// way instead of answering "offline".
const FirstConnectWait = 2 * time.Second

// WaitFirstAttempt waits while the link's first connection attempt is under
// way (StateConnecting), at most max: it returns once the link is
// connected, has failed its first attempt (then it is honestly offline), or
// max or ctx has run out.
func (l *Link) WaitFirstAttempt(ctx context.Context, max time.Duration) {
	t := time.NewTimer(max)
	defer t.Stop()
	for {
		l.mu.Lock()
		state, ch := l.state, l.stateCh
		l.mu.Unlock()
		if state != StateConnecting {
			return
		}
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// WaitCaughtUp waits until the link is connected and every message the relay
// held for it at hello (welcome.backlog) is in the inbox. It returns nil
// then, the context's error, or an error once the link has stopped.
func (l *Link) WaitCaughtUp(ctx context.Context) error {
	for {
		l.mu.Lock()
		state, stateCh, caught := l.state, l.stateCh, l.caughtUp
		reason := l.stopReason
		l.mu.Unlock()
		switch state {
		case StateStopped:
			return errors.New(reason)
		case StateClosed:
			return ErrOffline
		}
		var caughtCh <-chan struct{}
		if state == StateConnected {
			caughtCh = caught
		}
		select {
		case <-caughtCh:
			return nil
		case <-stateCh:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
