package cli

import (
	"context"
	"os/exec"
	"runtime"
	"time"
)

// desktopNotify shows text as a desktop notification when the machine has
// a way to (best effort, bounded to a second: a hook must not linger).
func desktopNotify(text string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.CommandContext(ctx, "osascript", "-e", "on run argv\ndisplay notification (item 1 of argv) with title \"claude-relay\"\nend run", text)
	default:
		if _, err := exec.LookPath("notify-send"); err != nil {
			return
		}
		cmd = exec.CommandContext(ctx, "notify-send", "claude-relay", text)
	}
	cmd.Run()
}
