package link

import (
	"context"
	"errors"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

// Run connects and keeps reconnecting until ctx ends or the relay says not
// to. On return the connection is closed (normal closure when ctx ended).
func (l *Link) Run(ctx context.Context) error {
	attempt := 0
	misses := 0 // attempts in a row that did not reach a welcome
	for {
		l.applyRename() // asked for while no connection was live
		welcomed, err := l.connectOnce(ctx)
		if ctx.Err() == nil && l.applyRename() {
			attempt, misses = 0, 0
			continue // at once, as the new id
		}
		if ctx.Err() != nil {
			l.mu.Lock()
			l.state = StateClosed
			l.since = time.Now()
			close(l.stateCh)
			l.stateCh = make(chan struct{})
			l.mu.Unlock()
			return nil
		}
		var stop *stopError
		if errors.As(err, &stop) {
			lvl := slog.LevelWarn
			if stop.code == protocol.CloseIDInUse {
				lvl = slog.LevelInfo // asked for with no_takeover; the caller decides
			}
			l.log.Log(ctx, lvl, "relay told this session not to reconnect", "reason", stop.reason, "code", stop.code)
			l.mu.Lock()
			l.stopCode = stop.code
			l.setStateLocked(StateStopped, stop.reason)
			l.mu.Unlock()
			return err
		}
		if welcomed {
			attempt, misses = 0, 0
		} else {
			misses++
		}
		now := l.failover(misses)
		var d time.Duration
		if !now {
			d = l.backoff(attempt)
			attempt++
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		l.mu.Lock()
		l.nextAttempt = time.Now().Add(d)
		next := StateReconnecting
		if now && l.connected == 0 {
			next = StateConnecting // still the first round through the list
		}
		l.setStateLocked(next, msg)
		url := l.cfg.URLs[l.cur]
		l.mu.Unlock()
		l.log.Info("relay connection lost; will retry", "err", msg, "retry_in", d.Round(time.Millisecond), "next_url", url)
		if d == 0 {
			continue
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// backoff is the delay before attempt n (0-based): exponential from
// MinBackoff, capped at MaxBackoff, with jitter in [d/2, d].
func (l *Link) backoff(n int) time.Duration {
	return Backoff(n, l.cfg.MinBackoff, l.cfg.MaxBackoff)
}

// Backoff is the reconnect delay for attempt n: exponential from min, capped
// at max, with jitter in [d/2, d].
func Backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + time.Duration(mrand.Int64N(int64(half)+1))
}

type stopError struct {
	reason string
	code   int // the close code, when the relay closed with one
}

func (e *stopError) Error() string { return e.reason }
