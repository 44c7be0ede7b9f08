// Command relayd is the claude-relay daemon: it routes real-time messages
// between AI coding-agent sessions. See relayd --help.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/claude-relay/claude-relay/relayd/internal/app"
	"github.com/claude-relay/claude-relay/relayd/internal/gctune"
)

func main() {
	// For the whole process, whatever the command: the relay, and the
	// load tool and the floor relay it measures against, collect their
	// garbage under the same settings (internal/gctune says why).
	gctune.Start(gctune.DefaultFloor)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
