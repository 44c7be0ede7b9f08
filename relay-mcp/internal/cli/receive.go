package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/registry"
	ucli "github.com/urfave/cli/v2"
)

func receiveCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "receive",
		Usage: "print unread messages of a session and mark them read (exit 0 even when there are none)",
		Description: `Whose mail: --id, else CLAUDE_RELAY_SESSION_ID, else RELAY_CLIENT_ID.

While that session's relay-mcp runs on this machine, receive reads the inbox
it keeps current ($RELAY_HOME/inbox/ID) without connecting. Otherwise it
connects as the id (quietly, and never taking it over from a live session
elsewhere), stores what the relay held for it, and prints the unread mail.

Examples:
   relay-mcp receive --id CC-1
   relay-mcp receive --id cli-$(hostname -s) --wait 60s   # replies to relay-mcp send
   relay-mcp receive --id CC-1 --json | jq -r '.[].body'

Exit codes: 0 (also when nothing is unread), 2 usage, 3 relay unreachable,
5 refused by the relay, 7 the id is online on another machine.`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "id", DefaultText: "$" + EnvSessionID + ", else $" + EnvClientID, Usage: "whose mail"},
			&ucli.DurationFlag{Name: "wait", Usage: "if nothing is unread, wait this long for a message (0: do not wait)"},
			takeoverFlag(), timeoutFlag(), jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			id := c.String("id")
			if id == "" {
				id = os.Getenv(EnvSessionID)
			}
			if id == "" {
				id = os.Getenv(EnvClientID)
			}
			if id == "" {
				return exitf(ExitUsage, "whose mail? pass --id ID (or set %s)", EnvSessionID)
			}
			if err := protocol.ValidateID(id); err != nil {
				return exitf(ExitUsage, "--id: %v", err)
			}
			cfg, err := loadCLIConfig(c, s)
			if err != nil {
				return err
			}
			reg := registry.Open(cfg.home, cfg.logger)
			local := func() (*inbox.Inbox, error) {
				in, err := inbox.Open(filepath.Join(cfg.home, "inbox", id), inbox.Options{})
				if err != nil {
					return nil, exitf(ExitError, "%v", err)
				}
				return in, nil
			}
			var in *inbox.Inbox
			if _, running := localHolder(reg, id); running && !c.Bool("takeover") {
				// The running session keeps the inbox current; leave its connection be.
				if in, err = local(); err != nil {
					return err
				}
				defer in.Close()
			} else {
				cl, err := dial(c, cfg, []idChoice{{id: id, explicit: true}}, dialOptions{timeout: c.Duration("timeout"), quiet: true, takeover: c.Bool("takeover")})
				var ec ucli.ExitCoder
				if errors.As(err, &ec) && ec.ExitCode() == ExitInUse {
					if _, running := localHolder(reg, id); !running {
						return err
					}
					// It started meanwhile on this machine: its inbox is current.
					if in, err = local(); err != nil {
						return err
					}
					defer in.Close()
				} else if err != nil {
					return err
				} else {
					defer cl.close()
					// welcome.backlog says how many held messages follow it;
					// once they are stored the inbox is complete.
					ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
					err := cl.l.WaitCaughtUp(ctx)
					cancel()
					if err != nil {
						fmt.Fprintf(s.Stderr, "relay-mcp: not every held message arrived (%v); showing what did\n", err)
					}
					in = cl.in
				}
			}
			es := in.List(inbox.Query{})
			if len(es) == 0 && c.Duration("wait") > 0 {
				t := time.NewTimer(c.Duration("wait"))
				defer t.Stop()
			wait:
				for len(es) == 0 {
					ch := in.Changed()
					select {
					case <-ch:
					case <-t.C:
						es = in.List(inbox.Query{})
						break wait
					case <-c.Context.Done():
						break wait
					case <-time.After(500 * time.Millisecond): // mail stored by the running session
					}
					es = in.List(inbox.Query{})
				}
			}
			var ids []string
			for _, e := range es {
				ids = append(ids, e.ID)
			}
			if err := in.MarkRead(ids...); err != nil {
				return exitf(ExitError, "%v", err)
			}
			if c.Bool("json") {
				if es == nil {
					es = []inbox.Entry{}
				}
				return printJSON(s, es)
			}
			for _, e := range es {
				fmt.Fprintf(s.Stdout, "[%s] %s %s: %s\n", e.TS.Local().Format(time.TimeOnly), e.ID, e.From, e.Body)
			}
			return nil
		},
	}
}
