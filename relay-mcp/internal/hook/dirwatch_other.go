//go:build !linux

package hook

import (
	"context"
	"time"
)

// WatchDir returns a channel that receives every 2 s (no file notification
// here yet: the listener looks at the inbox on that tick).
func WatchDir(ctx context.Context, dir string, names ...string) (<-chan struct{}, error) {
	ch := make(chan struct{}, 1)
	go func() {
		t := time.NewTicker(2 * time.Second)
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
	return ch, nil
}
