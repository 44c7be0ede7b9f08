package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/filelock"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/hook"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/proc"
	ucli "github.com/urfave/cli/v2"
)

// ExitWake is the exit code that makes Claude Code start a turn with the
// hook's stderr (an async hook with asyncRewake).
const ExitWake = 2

// hookWake is `relay-mcp hook claude-code --wake Stop`: the wake listener
// (see hook.Listen). It exits 2 with the mail on stderr, or 0 when it
// stands down; it never prints on stdout.
func hookWake(c *ucli.Context, s Streams, in hook.ClaudeInput) error {
	dir, id, ok := hookInbox(c, s, in.Cwd)
	if !ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fmt.Fprintf(s.Stderr, "relay-mcp hook: %v\n", err)
		return nil
	}
	session := sessionProcess()
	if oneShot(session) {
		// claude -p PROMPT ends after this turn and waits for async hooks
		// before it exits: nothing to wake, so do not hold it up.
		return nil
	}
	// One listener per session, however often Stop fires: a second one
	// finds the lock held and leaves.
	lock, err := filelock.AcquireWithin(filepath.Join(dir, "wake.lock"), 0)
	if err != nil {
		return nil
	}
	defer lock.Release()

	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	changed, err := hook.WatchDir(ctx, dir, hook.WatchedFiles...)
	if err != nil {
		fmt.Fprintf(s.Stderr, "relay-mcp hook: cannot watch %s (%v); looking every 2 s\n", dir, err)
		changed = nil
	}
	ppid := os.Getppid()
	// It may wait for hours: hand back what start-up took.
	debug.SetGCPercent(20)
	debug.FreeOSMemory()
	res, err := hook.Listen(ctx, hook.WakeOptions{
		Self: id, Dir: dir, IdleLimit: c.Duration("idle-limit"), MaxWakes: maxWakes(c.Int("max-wakes")), Changed: changed,
		SessionAlive: func() bool { return os.Getppid() == ppid && proc.Alive(session) },
		Open: func() (hook.Mailbox, func(), error) {
			mb, err := inbox.Open(dir, inbox.Options{LockWait: hookLockWait})
			if err != nil {
				return nil, nil, err
			}
			return mb, func() { mb.Close() }, nil
		},
	})
	if err != nil {
		fmt.Fprintf(s.Stderr, "relay-mcp hook: %v\n", err)
		return nil
	}
	if !res.Wake {
		if os.Getenv("RELAY_HOOK_TIMING") != "" {
			fmt.Fprintf(s.Stderr, "relay-mcp hook --wake: %s\n", res.Reason)
		}
		return nil
	}
	fmt.Fprintln(s.Stderr, res.Text)
	return ucli.Exit("", ExitWake)
}

// maxWakes maps the flag (0 = never wake) to hook.WakeOptions.MaxWakes.
func maxWakes(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// sessionProcess is the agent session a hook belongs to: its parent, or
// the parent's parent when the parent is the shell the agent ran the hook
// command with (Claude Code runs hooks through sh -c).
func sessionProcess() int {
	ppid := os.Getppid()
	if runtime.GOOS != "linux" {
		return ppid
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ppid))
	if err != nil {
		return ppid
	}
	switch strings.TrimSpace(string(comm)) {
	case "sh", "bash", "dash", "zsh", "ash", "busybox":
	default:
		return ppid
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", ppid))
	if err != nil {
		return ppid
	}
	// pid (comm) state ppid …: comm may hold spaces; read after the last ')'.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 2 {
		return ppid
	}
	if gp, err := strconv.Atoi(f[1]); err == nil && gp > 1 {
		return gp
	}
	return ppid
}

// oneShot reports whether pid is a headless one-turn Claude Code run
// (-p/--print without --input-format stream-json), as far as this system
// lets us read its command line (Linux: /proc).
func oneShot(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	print, stream := false, false
	for i, a := range args {
		switch {
		case a == "-p" || a == "--print":
			print = true
		case a == "--input-format" && i+1 < len(args) && args[i+1] == "stream-json", a == "--input-format=stream-json":
			stream = true
		}
	}
	return print && !stream
}
