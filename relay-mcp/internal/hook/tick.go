package hook

import (
	"context"
	"time"
)

// tick returns a channel that receives every d until ctx ends; a tick its
// reader has not taken yet is not doubled. It stands in for file
// notifications where there are none: the reader looks again on each tick.
func tick(ctx context.Context, d time.Duration) <-chan struct{} {
	ch := make(chan struct{}, 1)
	go func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	return ch
}
