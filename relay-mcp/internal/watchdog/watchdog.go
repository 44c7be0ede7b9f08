// Package watchdog notices when the agent that spawned relay-mcp is gone, so
// no orphan keeps an id online (and takes mail meant for a successor).
// Stdin closing is noticed by the MCP transport itself (its read ends); this
// package covers a parent that died while something else still holds our
// stdin open: the process is reparented and its parent pid changes.
package watchdog

import (
	"context"
	"os"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/proc"
)

// DefaultInterval is how often the parent is checked: well within the 10 s
// in which relay-mcp must exit once its parent is gone.
const DefaultInterval = time.Second

// Options tune Watch.
type Options struct {
	Interval time.Duration      // defaults to DefaultInterval
	Getppid  func() int         // defaults to os.Getppid (tests replace it)
	Alive    func(pid int) bool // defaults to a signal-0 probe
}

// Watch returns a channel that receives a reason once the parent process
// is gone. It stops with ctx.
func Watch(ctx context.Context, o Options) <-chan string {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Getppid == nil {
		o.Getppid = os.Getppid
	}
	if o.Alive == nil {
		o.Alive = proc.Alive
	}
	out := make(chan string, 1)
	parent := o.Getppid()
	go func() {
		t := time.NewTicker(o.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if parent <= 1 {
				continue // started by init or a supervisor: nothing to watch
			}
			if p := o.Getppid(); p != parent {
				out <- "parent process exited (reparented)"
				return
			}
			if !o.Alive(parent) {
				out <- "parent process exited"
				return
			}
		}
	}()
	return out
}
