// Package retention expires old mail: a loop that asks the store to drop
// every message older than the retention period, once at start and then at
// a fixed interval, and counts and logs what went.
package retention

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Pruner is the part of store.Store retention needs.
type Pruner interface {
	// Prune drops messages older than before from every mailbox and
	// returns how many mailbox entries were dropped.
	Prune(ctx context.Context, before time.Time) (int, error)
}

// Log attribute keys.
const (
	logKeyDropped = "dropped"
	logKeyTotal   = "dropped_total"
	logKeyBefore  = "older_than"
	logKeyErr     = "err"
	logKeyTook    = "took"
)

// MaxInterval caps how long a message may outlive its retention: with a
// retention of 7 days the store is swept every hour, not every 16.8 hours.
const MaxInterval = time.Hour

// minInterval keeps a tiny retention (tests, --retention 1s) from turning
// the sweep into a busy loop.
const minInterval = time.Second

// Keeper runs the sweeps. Fill the fields and call Run.
type Keeper struct {
	// Store is swept. Required.
	Store Pruner
	// Keep is how long a message is kept. Zero or negative: forever (Run
	// returns at once).
	Keep time.Duration
	// Every is the time between sweeps. Defaults to Keep/10, at most
	// MaxInterval and at least one second: a message lives at most about
	// 10% beyond its retention.
	Every time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time

	dropped atomic.Int64
	sweeps  atomic.Int64
	failed  atomic.Int64
}

// Dropped is how many mailbox entries retention has dropped since start.
func (k *Keeper) Dropped() int64 { return k.dropped.Load() }

// Sweeps is how many sweeps have completed (successfully or not).
func (k *Keeper) Sweeps() int64 { return k.sweeps.Load() }

// Failed is how many sweeps ended in an error.
func (k *Keeper) Failed() int64 { return k.failed.Load() }

// Interval is the time between sweeps that Run uses.
func (k *Keeper) Interval() time.Duration {
	if k.Every > 0 {
		return k.Every
	}
	return min(max(k.Keep/10, minInterval), MaxInterval)
}

// Run sweeps once, then every Interval, until ctx ends. A failed sweep (the
// store is unavailable) is logged and retried at the next tick: expiry is
// never urgent enough to retry harder.
func (k *Keeper) Run(ctx context.Context) {
	if k.Keep <= 0 {
		return
	}
	if k.Logger == nil {
		k.Logger = slog.Default()
	}
	if k.Now == nil {
		k.Now = time.Now
	}
	t := time.NewTicker(k.Interval())
	defer t.Stop()
	for {
		k.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep drops what is older than Keep now, once.
func (k *Keeper) Sweep(ctx context.Context) {
	if k.Now == nil {
		k.Now = time.Now
	}
	if k.Logger == nil {
		k.Logger = slog.Default()
	}
	start := k.Now()
	before := start.Add(-k.Keep)
	n, err := k.Store.Prune(ctx, before)
	total := k.dropped.Add(int64(n))
	k.sweeps.Add(1)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: not worth a warning
		}
		k.failed.Add(1)
		k.Logger.Warn("retention: could not drop expired messages; retrying at the next sweep",
			logKeyBefore, before.UTC().Format(time.RFC3339), logKeyDropped, n, logKeyErr, err)
		return
	}
	if n > 0 {
		k.Logger.Info("retention: dropped expired messages", logKeyDropped, n, logKeyTotal, total,
			logKeyBefore, before.UTC().Format(time.RFC3339), logKeyTook, k.Now().Sub(start).Round(time.Millisecond))
	}
}
