package cli

import (
	"context"
	"path/filepath"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/wake"
	ucli "github.com/urfave/cli/v2"
)

func watchCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "watch",
		Usage: "wake an idle agent: run a command when mail arrives for an id (once per burst, never two at once)",
		Description: `Connects quietly as watch-ID (or --as; it never takes ID itself over, so
the agent can come online as ID whenever it likes) and asks the relay to
announce mail for ID: the relay tells the watcher how many messages wait,
never what they say. When mail comes, and then --debounce passes without
more, watch runs --exec with sh -c; mail that comes while it runs leads to
one more run after it. Mail that already waits when watch starts runs the
command at once. The command gets RELAY_WATCH_ID, RELAY_WATCH_COUNT,
RELAY_WATCH_SEQ and CLAUDE_RELAY_SESSION_ID=ID in its environment. Each
run's exit code and duration are logged and kept in
$RELAY_HOME/watch/ID.json.

With per-identity tokens, the token must claim both watch-ID (or --as) and ID.

Recipes (see docs/agents.md):
   # Claude Code: resume the session headless, let it read and answer
   relay-mcp watch --for CC-2 --exec 'claude -p --resume "$CC2_SESSION" "check your relay messages and act on them"'
   # Codex
   relay-mcp watch --for CODEX --exec 'codex exec resume --last "check your relay messages and act on them"'
   # any script: print the mail
   relay-mcp watch --for BOT --exec 'relay-mcp receive --id "$RELAY_WATCH_ID"'

Exit codes: 0 (stopped, or --max-runs done), 2 usage, 3 relay unreachable,
5 refused by the relay, 7 the watcher id is online elsewhere.`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "for", Usage: "the id whose mail wakes the command"},
			&ucli.StringFlag{Name: "exec", Usage: "the command to run (sh -c)"},
			&ucli.DurationFlag{Name: "debounce", Value: 2 * time.Second, Usage: "quiet time after the last message before the command runs (a burst wakes it once)"},
			&ucli.DurationFlag{Name: "run-timeout", Value: 30 * time.Minute, Usage: "kill a command that runs longer"},
			&ucli.IntFlag{Name: "max-runs", Usage: "exit after this many runs (0: keep watching)"},
			&ucli.BoolFlag{Name: "skip-online", Usage: "do not run while ID is online (its relay-mcp has the mail; for agents that stay connected while idle, such as an open Claude Code)"},
			&ucli.StringFlag{Name: "as", DefaultText: "watch-ID", Usage: "the watcher's own id"},
			timeoutFlag(),
		},
		Action: func(c *ucli.Context) error {
			id := c.String("for")
			if id == "" {
				return exitf(ExitUsage, "whose mail? pass --for ID, e.g. relay-mcp watch --for CODEX --exec 'codex exec resume --last \"check your relay messages\"'")
			}
			if err := protocol.ValidateID(id); err != nil {
				return exitf(ExitUsage, "--for: %v", err)
			}
			as := c.String("as")
			if as == "" {
				as = watcherID(id)
			}
			if err := protocol.ValidateID(as); err != nil {
				return exitf(ExitUsage, "--as: %v", err)
			}
			if as == id {
				return exitf(ExitUsage, "--as must differ from --for: the watcher must leave %s free for the agent", id)
			}
			if c.String("exec") == "" {
				return exitf(ExitUsage, "--exec is empty: give the command that wakes the agent")
			}
			cfg, err := loadCLIConfig(c, s)
			if err != nil {
				return err
			}
			if !c.IsSet("log-level") { // a long-running command: say what it does
				if cfg, err = loadConfigLevel(c, s, "info"); err != nil {
					return err
				}
			}
			log := cfg.logger.With("watch", id)
			r := wake.New(wake.Options{
				ID: id, Command: c.String("exec"), Debounce: c.Duration("debounce"), RunTimeout: c.Duration("run-timeout"),
				MaxRuns: c.Int("max-runs"), SkipOnline: c.Bool("skip-online"), StateFile: filepath.Join(cfg.home, "watch", id+".json"),
				Output: s.Stderr, Env: []string{EnvSessionID + "=" + id}, Logger: log,
			})
			cl, err := dial(c, cfg, []idChoice{{id: as, explicit: true}}, dialOptions{timeout: c.Duration("timeout"), quiet: true, onMail: r.Notify,
				agent: "relay-mcp-watch", label: "wakes " + id + " when mail arrives"})
			if err != nil {
				return err
			}
			defer cl.close()
			ctx, cancel := context.WithCancel(c.Context)
			defer cancel()
			werr := make(chan error, 1)
			go func() {
				err := keepWatching(ctx, cl.l, id, log)
				cancel() // the runner stops with it
				werr <- err
			}()
			log.Info("watching for mail", "as", as, "exec", c.String("exec"))
			r.Run(ctx)
			cancel()
			return <-werr
		},
	}
}

// watcherID is the default id of the watcher of id.
func watcherID(id string) string {
	w := "watch-" + id
	if len(w) > protocol.MaxIDLen {
		w = w[:protocol.MaxIDLen]
	}
	return w
}

// keepWatching asks the relay for mail events for id on every connection
// (a watch lasts as long as its connection). It returns an error only when
// the relay refuses the watch.
func keepWatching(ctx context.Context, l *link.Link, id string, log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) error {
	for {
		ch := l.StateChanged()
		st := l.Status()
		if st.State == link.StateStopped {
			return exitf(ExitStopped, "%s", st.StopReason)
		}
		if st.State == link.StateConnected {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := l.Watch(rctx, []string{id})
			cancel()
			switch err.(type) {
			case nil:
				log.Info("the relay announces mail for " + id)
			case *link.RelayError:
				return exitf(ExitStopped, "the relay refused to watch %s: %v", id, err)
			default:
				log.Warn("watch request failed; retrying on the next connection", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		}
	}
}
