package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/retention"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// startRetention sweeps st for mail older than keep in the background (both
// stores: the memory store would otherwise grow by about 1 KB per message
// for as long as relayd runs). The returned stop waits for the sweeper to
// exit.
func startRetention(ctx context.Context, st store.Store, keep time.Duration, log *slog.Logger) (stop func()) {
	if keep <= 0 {
		log.Info("retention off: messages are kept until their recipients clear them")
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	k := &retention.Keeper{Store: st, Keep: keep, Logger: log}
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.Run(ctx)
	}()
	log.Info("retention", "keep", keep, "sweep_every", k.Interval())
	return func() {
		cancel()
		<-done
	}
}
