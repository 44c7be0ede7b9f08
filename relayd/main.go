// Command relayd is the claude-relay daemon: it routes real-time messages
// between AI coding-agent sessions. See relayd --help.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/claude-relay/claude-relay/relayd/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
