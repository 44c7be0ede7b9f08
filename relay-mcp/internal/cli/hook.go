package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/hook"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/proc"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/registry"
	ucli "github.com/urfave/cli/v2"
)

// Hook time limits. A hook runs on the agent's critical path: it must
// answer in well under 100 ms, and a stuck inbox or a silent stdin must
// never hang the agent.
const (
	hookLockWait  = 40 * time.Millisecond  // then answer without mail
	hookStdinWait = 500 * time.Millisecond // Claude Code closes stdin at once; a terminal would not
	hookMaxInput  = 1 << 20
)

func hookCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "hook",
		Usage: "answer an agent's hooks from this session's inbox, so the agent notices mail unasked",
		Description: `Hooks are short-lived processes the agent runs at turn boundaries. They read
the session's persisted inbox ($RELAY_HOME/inbox/ID) — never the relay — so
they answer in milliseconds even when the relay is down, and give up on a
locked inbox after 40 ms rather than hang the agent. Messages a hook shows
the model are marked read; the running relay-mcp server reports that to the
relay (read receipts). The session id is found as the server finds it
(CLAUDE_RELAY_SESSION_ID, --client-id, RELAY_CLIENT_ID); failing that, the
one online session registered on this machine for the hook's working
directory. relay-mcp install claude --hooks writes the entries.

Examples:
   echo '{"hook_event_name":"UserPromptSubmit","cwd":"'$PWD'"}' | CLAUDE_RELAY_SESSION_ID=CC-2 relay-mcp hook claude-code UserPromptSubmit
   relay-mcp hook claude-code --on-stop block Stop`,
		Subcommands: []*ucli.Command{
			{
				Name:      "claude-code",
				Usage:     "answer a Claude Code hook: SessionStart, UserPromptSubmit, PostToolUse or Stop (JSON on stdin, JSON on stdout)",
				ArgsUsage: "EVENT",
				Description: `Answers in Claude Code's hook format: unread mail as additionalContext on
SessionStart, UserPromptSubmit and PostToolUse (news only); on Stop, per
--on-stop. Messages shown whole are marked read. Exit 0 always, but 1 for
a bad event or flag (never 2, which Claude Code takes as "block").

Examples:
   relay-mcp install claude --hooks --write     # writes these into ~/.claude/settings.json
   echo '{"hook_event_name":"UserPromptSubmit","cwd":"'$PWD'"}' | CLAUDE_RELAY_SESSION_ID=CC-2 relay-mcp hook claude-code UserPromptSubmit
   relay-mcp hook claude-code --on-stop block Stop < stop-input.json`,
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "on-stop", EnvVars: []string{"RELAY_ON_STOP"}, Value: hook.StopNotify,
						Usage: "what Stop does when mail arrived that the model has not seen: block (keep the turn going once, showing it), notify (tell the person; the model sees it at the next prompt) or off"},
					&ucli.BoolFlag{Name: "wake", Usage: "with Stop, as an async/asyncRewake hook: wait in the background for mail the model has not seen and exit 2 with it on stderr, which starts a new turn in an idle session"},
					&ucli.DurationFlag{Name: "idle-limit", EnvVars: []string{"RELAY_WAKE_IDLE_LIMIT"}, Value: hook.DefaultIdleLimit, Usage: "with --wake: stand down after waiting this long for mail (the next turn's Stop starts a new listener)"},
					&ucli.IntFlag{Name: "max-wakes", EnvVars: []string{"RELAY_WAKE_MAX"}, Value: hook.DefaultMaxWakes, Usage: "with --wake: wake a session at most this many times in a row without a prompt from its person, so two agents cannot wake each other forever (0 never wakes)"},
				},
				Action: func(c *ucli.Context) error { return hookClaude(c, s) },
			},
			{
				Name:      "codex",
				Usage:     "Codex's notify command: tell the person about unread mail when a Codex turn ends (Codex cannot add context from a hook)",
				ArgsUsage: "[NOTIFICATION-JSON]",
				Description: `In ~/.codex/config.toml:  notify = ["relay-mcp", "hook", "codex"]
Codex runs it when a turn ends, with the notification JSON as the last
argument, and ignores its output. When mail arrived that nobody was told
about, it prints one line and shows a desktop notification.

Examples:
   CLAUDE_RELAY_SESSION_ID=CODEX relay-mcp hook codex --desktop=false '{"type":"agent-turn-complete"}'`,
				Flags: []ucli.Flag{
					&ucli.BoolFlag{Name: "desktop", Value: true, Usage: "also show the line as a desktop notification (notify-send or osascript, when found)"},
				},
				Action: func(c *ucli.Context) error { return hookCodex(c, s) },
			},
		},
	}
}

// readHookInput reads the hook's JSON from stdin, giving up after
// hookStdinWait (then the event comes from the command line only).
func readHookInput(r io.Reader) ([]byte, bool) {
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r, hookMaxInput))
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		return res.b, res.err == nil
	case <-time.After(hookStdinWait):
		return nil, false
	}
}

// hookClaude never exits 2: to Claude Code, exit code 2 from a hook means
// "block" (a prompt, a tool, a stop). Mistakes exit 1, which Claude Code
// reports without blocking anything.
func hookClaude(c *ucli.Context, s Streams) error {
	started := time.Now()
	onStop := c.String("on-stop")
	switch onStop {
	case hook.StopBlock, hook.StopNotify, hook.StopOff:
	default:
		return exitf(ExitError, "--on-stop %q: use block, notify or off", onStop)
	}
	var in hook.ClaudeInput
	raw, ok := readHookInput(s.Stdin)
	if ok && len(raw) > 0 {
		if err := json.Unmarshal(raw, &in); err != nil {
			// Never fail the agent's turn over our input: answer nothing.
			fmt.Fprintf(s.Stderr, "relay-mcp hook: the hook input is not JSON (%v); answering nothing\n", err)
		}
	}
	if ev := c.Args().First(); ev != "" {
		in.HookEventName = ev
	}
	known := false
	for _, e := range hook.Events {
		known = known || e == in.HookEventName
	}
	if !known {
		return exitf(ExitError, "hook event %q: use one of SessionStart, UserPromptSubmit, PostToolUse, Stop (as the argument or hook_event_name)", in.HookEventName)
	}
	if c.Bool("wake") {
		if in.HookEventName != hook.EventStop {
			return exitf(ExitError, "--wake listens after a turn: use it with Stop, not %s", in.HookEventName)
		}
		return hookWake(c, s, in)
	}
	out := &hook.ClaudeOutput{}
	defer func() {
		b, _ := json.Marshal(out)
		fmt.Fprintln(s.Stdout, string(b))
	}()
	dir, id, ok := hookInbox(c, s, in.Cwd)
	if !ok {
		return nil
	}
	note := syncNote(in.HookEventName, dir)
	var mb hook.Mailbox = hook.NoMail{} // this session never received anything
	if _, err := os.Stat(dir); err == nil {
		in2, err := inbox.Open(dir, inbox.Options{LockWait: hookLockWait})
		if err != nil {
			fmt.Fprintf(s.Stderr, "relay-mcp hook: %v; answering without mail\n", err)
			return nil
		}
		defer in2.Close()
		mb = in2
	}
	o, err := hook.Claude(in, mb, hook.ClaudeOptions{Self: id, Dir: dir, OnStop: onStop, LinkNote: note})
	if o != nil {
		out = o
	}
	if err != nil {
		fmt.Fprintf(s.Stderr, "relay-mcp hook: %v\n", err)
	}
	if os.Getenv("RELAY_HOOK_TIMING") != "" {
		fmt.Fprintf(s.Stderr, "relay-mcp hook %s answered in %s\n", in.HookEventName, time.Since(started).Round(time.Microsecond))
	}
	return nil
}

// How long a hook at the start of a session or a prompt waits for the
// running server's first sync with the relay, so that mail that waited
// there while the session was away is in the inbox when the hook reads it.
// It is normally a few tens of milliseconds (Claude Code starts the MCP
// server and the SessionStart hook together); the bound is reached only
// when the relay is slow to answer.
const (
	syncWaitStart  = 1500 * time.Millisecond
	syncWaitPrompt = 1000 * time.Millisecond
)

// syncNote waits for the server's sync (SessionStart, UserPromptSubmit)
// and returns the line to add when the mail may be incomplete, or "".
func syncNote(event, dir string) string {
	var ls hook.LinkState
	var ok bool
	switch event {
	case hook.EventSessionStart:
		ls, ok = hook.WaitSync(dir, syncWaitStart)
		if !ok {
			return "claude-relay: not connected to the relay yet, so mail that waited there is not shown here; it will be at your next prompt (relay_receive reads it now)."
		}
	case hook.EventUserPromptSubmit:
		if ls, ok = hook.ReadLinkState(dir); !ok {
			return ""
		}
		if !ls.Settled() {
			ls, ok = hook.WaitSync(dir, syncWaitPrompt)
		}
	default:
		return ""
	}
	switch {
	case !ok || ls.Synced:
		return ""
	case ls.State == "connecting":
		return "claude-relay: still connecting to the relay at " + ls.URL + "; mail that waits there is not shown yet."
	}
	why := ls.Error
	if why == "" {
		why = "relay " + ls.State
	}
	return "claude-relay: the relay cannot be reached (" + why + "); mail that waits there will come when it connects. Mail below, if any, is what arrived before."
}

// hookInbox is the inbox folder and id of the session a hook serves; ok is
// false when there is none. Hooks installed for every project also run in
// sessions without a relay: for them this is normal, and quiet.
func hookInbox(c *ucli.Context, s Streams, cwd string) (dir, id string, ok bool) {
	home, id, err := hookSession(c, cwd)
	if err != nil {
		if !errors.Is(err, hook.ErrNoSession) {
			fmt.Fprintf(s.Stderr, "relay-mcp hook: %v\n", err)
		}
		return "", "", false
	}
	return filepath.Join(home, "inbox", id), id, true
}

// hookSession finds RELAY_HOME and the session id a hook serves: the
// server's precedence (CLAUDE_RELAY_SESSION_ID, --client-id,
// RELAY_CLIENT_ID), then the one live registered session on this host in
// cwd. The server's last resort, hostname-pid, names a process the hook
// cannot know.
func hookSession(c *ucli.Context, cwd string) (string, string, error) {
	home := c.String("home")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", "", fmt.Errorf("cannot find the home directory; set RELAY_HOME: %v", err)
		}
		home = filepath.Join(h, "claude-relay")
	}
	flag := ""
	if c.IsSet("client-id") {
		flag = c.String("client-id")
	}
	if os.Getenv(EnvSessionID) != "" || flag != "" || os.Getenv(EnvClientID) != "" {
		id, _, err := ResolveID(os.Getenv(EnvSessionID), flag, os.Getenv(EnvClientID), "", 0)
		return home, id, err
	}
	if cwd == "" {
		cwd, _ = os.Getwd()
	}
	id, err := sessionInCwd(home, cwd)
	return home, id, err
}

// sessionInCwd reads the registry without its lock (it is replaced
// atomically, so a read sees a whole file) and picks the one live session
// on this host whose working directory is cwd.
func sessionInCwd(home, cwd string) (string, error) {
	reg := registry.Open(home, nil)
	b, err := os.ReadFile(reg.Path())
	if err != nil {
		return "", hook.ErrNoSession
	}
	f, err := registry.Decode(b)
	if err != nil {
		return "", hook.ErrNoSession
	}
	host, _ := os.Hostname()
	var found []string
	for id, s := range f.Sessions {
		if s.Online && s.Cwd == cwd && (s.Host == "" || s.Host == host) && proc.Alive(s.PID) {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		if len(found) > 1 {
			return "", fmt.Errorf("%w (%d sessions online in %s)", hook.ErrNoSession, len(found), cwd)
		}
		return "", hook.ErrNoSession
	}
	return found[0], nil
}

// hookCodex is Codex's notify program: notify = ["relay-mcp", "hook", "codex"]
// in ~/.codex/config.toml. Codex passes the notification JSON as the last
// argument and ignores the output; relay-mcp prints a line about unread
// mail and, with --desktop, shows it as a desktop notification.
func hookCodex(c *ucli.Context, s Streams) error {
	var raw []byte
	if c.NArg() > 0 {
		raw = []byte(c.Args().Get(c.NArg() - 1))
	}
	var n hook.CodexNotification
	json.Unmarshal(raw, &n)
	home, id, err := hookSession(c, n.Cwd)
	if err != nil {
		fmt.Fprintf(s.Stderr, "relay-mcp hook: %v\n", err)
		return nil
	}
	dir := filepath.Join(home, "inbox", id)
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	mb, err := inbox.Open(dir, inbox.Options{LockWait: hookLockWait})
	if err != nil {
		fmt.Fprintf(s.Stderr, "relay-mcp hook: %v\n", err)
		return nil
	}
	defer mb.Close()
	line, err := hook.Codex(raw, mb, id, dir)
	if err != nil {
		fmt.Fprintf(s.Stderr, "relay-mcp hook: %v\n", err)
	}
	if line != "" {
		fmt.Fprintln(s.Stdout, line)
		if c.Bool("desktop") {
			desktopNotify(line)
		}
	}
	return nil
}
