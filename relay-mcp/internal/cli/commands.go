package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/registry"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/tools"
	ucli "github.com/urfave/cli/v2"
)

func jsonFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "json", Usage: "print JSON instead of text"}
}

func printJSON(s Streams, v any) error {
	enc := json.NewEncoder(s.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ---- session

func sessionCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "session",
		Usage: "manage this machine's session registry ($RELAY_HOME/sessions/registry.json)",
		Subcommands: []*ucli.Command{
			{
				Name:      "register",
				Usage:     "register a session id (claude-session does this before starting the agent)",
				ArgsUsage: "ID",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "cwd", Usage: "working directory (default: the current one)"},
				},
				Action: func(c *ucli.Context) error {
					cfg, err := loadConfig(c, s)
					if err != nil {
						return err
					}
					if c.NArg() != 1 {
						return exitf(ExitUsage, "usage: relay-mcp session register ID")
					}
					id := c.Args().First()
					if err := protocol.ValidateID(id); err != nil {
						return exitf(ExitUsage, "bad id: %v", err)
					}
					cwd := c.String("cwd")
					if cwd == "" {
						cwd, _ = os.Getwd()
					}
					host, _ := os.Hostname()
					reg := registry.Open(cfg.home, cfg.logger)
					if err := reg.Register(registry.Session{ID: id, Host: host, Cwd: cwd, Agent: cfg.agent, Label: cfg.label}); err != nil {
						return exitf(ExitError, "%v", err)
					}
					fmt.Fprintf(s.Stdout, "registered %s\n", id)
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list registered sessions",
				Flags: []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					cfg, err := loadConfig(c, s)
					if err != nil {
						return err
					}
					ls, err := registry.Open(cfg.home, cfg.logger).List()
					if err != nil {
						return exitf(ExitError, "%v", err)
					}
					if c.Bool("json") {
						return printJSON(s, ls)
					}
					if len(ls) == 0 {
						fmt.Fprintln(s.Stdout, "no sessions registered (claude-session ID registers one)")
						return nil
					}
					tw := tabwriter.NewWriter(s.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tSTATE\tAGENT\tPID\tLAST SEEN\tCWD")
					for _, x := range ls {
						state := "offline"
						if x.Online {
							state = "online"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", x.ID, state, x.Agent, x.PID, x.LastSeen.Local().Format(time.DateTime), x.Cwd)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "remove",
				Usage:     "remove a session id from the registry",
				ArgsUsage: "ID",
				Action: func(c *ucli.Context) error {
					cfg, err := loadConfig(c, s)
					if err != nil {
						return err
					}
					if c.NArg() != 1 {
						return exitf(ExitUsage, "usage: relay-mcp session remove ID")
					}
					found, err := registry.Open(cfg.home, cfg.logger).Remove(c.Args().First())
					if err != nil {
						return exitf(ExitError, "%v", err)
					}
					if !found {
						return exitf(ExitNotFound, "no session %q in the registry", c.Args().First())
					}
					fmt.Fprintf(s.Stdout, "removed %s\n", c.Args().First())
					return nil
				},
			},
		},
	}
}

// ---- shell-init

// ShellInit returns the shell functions for shell: claude-session ID
// [claude args…] sets CLAUDE_RELAY_SESSION_ID, registers the id and starts
// claude; claude-sessions lists the registry.
func ShellInit(shell string) (string, error) {
	switch shell {
	case "bash", "zsh", "sh":
		return `# claude-relay: eval "$(relay-mcp shell-init ` + shell + `)"
claude-session() {
  if [ -z "$1" ]; then echo "usage: claude-session ID [claude args...]" >&2; return 2; fi
  local id="$1"; shift
  relay-mcp session register "$id" >/dev/null || return $?
  CLAUDE_RELAY_SESSION_ID="$id" command claude "$@"
}
claude-sessions() { relay-mcp session list "$@"; }
`, nil
	case "fish":
		return `# claude-relay: relay-mcp shell-init fish | source
function claude-session --description 'start claude as a named relay session'
  if test (count $argv) -lt 1
    echo "usage: claude-session ID [claude args...]" >&2; return 2
  end
  set -l id $argv[1]
  relay-mcp session register $id >/dev/null; or return $status
  env CLAUDE_RELAY_SESSION_ID=$id claude $argv[2..-1]
end
function claude-sessions --description 'list relay sessions'
  relay-mcp session list $argv
end
`, nil
	}
	return "", fmt.Errorf("unknown shell %q: use bash, zsh or fish", shell)
}

func shellInitCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:      "shell-init",
		Usage:     "print the claude-session and claude-sessions functions: eval \"$(relay-mcp shell-init bash)\"",
		ArgsUsage: "[bash|zsh|fish]",
		Action: func(c *ucli.Context) error {
			sh := c.Args().First()
			if sh == "" {
				sh = filepath.Base(os.Getenv("SHELL"))
			}
			out, err := ShellInit(sh)
			if err != nil {
				return exitf(ExitUsage, "%v", err)
			}
			fmt.Fprint(s.Stdout, out)
			return nil
		},
	}
}

// ---- one-shot clients: send, receive, peers

// client is a connected link for a one-shot command.
type client struct {
	cfg    *config
	l      *link.Link
	in     *inbox.Inbox
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (cl *client) close() {
	cl.cancel()
	cl.wg.Wait()
	cl.in.Close()
	if cl.cfg.closer != nil {
		cl.cfg.closer.Close()
	}
}

func dial(c *ucli.Context, s Streams, id string, timeout time.Duration, onMsg func([]inbox.Entry)) (*client, error) {
	cfg, err := loadConfig(c, s)
	if err != nil {
		return nil, err
	}
	in, out, err := openMailbox(cfg.home, id)
	if err != nil {
		return nil, exitf(ExitError, "%v", err)
	}
	ctx, cancel := context.WithCancel(c.Context)
	cl := &client{cfg: cfg, in: in, cancel: cancel}
	cl.l = link.New(link.Config{URL: cfg.url, Token: cfg.token, Hello: helloFor(cfg, id), Inbox: in, Outbox: out, Logger: cfg.logger, OnMessages: onMsg})
	cl.wg.Add(1)
	go func() { defer cl.wg.Done(); cl.l.Run(ctx) }()
	if err := waitConnected(ctx, cl.l, timeout); err != nil {
		cl.close()
		return nil, err
	}
	return cl, nil
}

// cliID is the id of a one-shot command: --as, or cli-<host>-<pid>. It is
// never the agent's session id by default: connecting with it would take
// the id over from the running session (4409).
func cliID(c *ucli.Context) (string, error) {
	if as := c.String("as"); as != "" {
		if err := protocol.ValidateID(as); err != nil {
			return "", exitf(ExitUsage, "--as: %v", err)
		}
		return as, nil
	}
	host, _ := os.Hostname()
	return "cli-" + DefaultID(host, os.Getpid()), nil
}

func asFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "as", Usage: "connect as this id (default cli-HOST-PID; using a running session's id takes it over)"}
}

func timeoutFlag() ucli.Flag {
	return &ucli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "how long to try to reach the relay"}
}

func sendCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:      "send",
		Usage:     "send one message: relay-mcp send CC-2 'tests pass' (TO: id, ids separated by commas, or '*')",
		ArgsUsage: "TO TEXT",
		Flags: []ucli.Flag{
			asFlag(), timeoutFlag(), jsonFlag(),
			&ucli.StringFlag{Name: "thread", Usage: "conversation name"},
			&ucli.StringFlag{Name: "reply-to", Usage: "id of the message this answers"},
			&ucli.BoolFlag{Name: "queue-if-unknown", Usage: "keep the message for an id the relay has never seen"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() < 2 {
				return exitf(ExitUsage, "usage: relay-mcp send TO TEXT")
			}
			id, err := cliID(c)
			if err != nil {
				return err
			}
			to, err := tools.ParseTo(c.Args().First(), id)
			if err != nil {
				return exitf(ExitUsage, "%v", err)
			}
			text := strings.Join(c.Args().Slice()[1:], " ")
			if text == "-" {
				b, err := readAll(s)
				if err != nil {
					return exitf(ExitError, "read stdin: %v", err)
				}
				text = b
			}
			cl, err := dial(c, s, id, c.Duration("timeout"), nil)
			if err != nil {
				return err
			}
			defer cl.close()
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout")+5*time.Second)
			defer cancel()
			ref := link.NewRef()
			ans, err := cl.l.Request(ctx, ref, &protocol.Send{Ref: ref, To: to, Body: text, Thread: c.String("thread"), ReplyTo: c.String("reply-to"), QueueIfUnknown: c.Bool("queue-if-unknown")})
			if err != nil {
				return exitf(ExitError, "not sent: %v", err)
			}
			acc := ans.(*protocol.Accepted)
			if c.Bool("json") {
				printJSON(s, acc)
			} else {
				fmt.Fprintf(s.Stdout, "%s", acc.ID)
				for _, o := range acc.Recipients {
					fmt.Fprintf(s.Stdout, " %s=%s", o.ID, o.Status)
				}
				fmt.Fprintln(s.Stdout)
			}
			for _, o := range acc.Recipients {
				if o.Status == protocol.StatusUnknown || o.Status == protocol.StatusFull {
					return exitf(ExitNotAll, "not stored for %s (%s)", o.ID, o.Status)
				}
			}
			return nil
		},
	}
}

func readAll(s Streams) (string, error) {
	var b strings.Builder
	sc := bufio.NewScanner(s.Stdin)
	sc.Buffer(make([]byte, 64<<10), protocol.DefaultMaxBodyBytes)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n"), sc.Err()
}

// sessionRunning reports whether the registry says a live process holds id.
func sessionRunning(reg *registry.Registry, id string) bool {
	ls, err := reg.List()
	if err != nil {
		return false
	}
	for _, x := range ls {
		if x.ID == id && x.Online && x.PID > 0 && x.PID != os.Getpid() {
			err := syscall.Kill(x.PID, 0)
			return err == nil || err == syscall.EPERM
		}
	}
	return false
}

func receiveCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "receive",
		Usage: "print unread messages of a session and mark them read (exit 0 even when there are none)",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "id", Usage: "whose mail (default: this shell's session id, " + EnvSessionID + " / " + EnvClientID + ")"},
			&ucli.DurationFlag{Name: "wait", Usage: "if nothing is unread, wait this long for a message"},
			timeoutFlag(), jsonFlag(),
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
			cfg, err := loadConfig(c, s)
			if err != nil {
				return err
			}
			var in *inbox.Inbox
			if sessionRunning(registry.Open(cfg.home, cfg.logger), id) {
				// The running session keeps the inbox current; do not take its id.
				in, err = inbox.Open(filepath.Join(cfg.home, "inbox", id), inbox.Options{})
				if err != nil {
					return exitf(ExitError, "%v", err)
				}
				defer in.Close()
			} else {
				cl, err := dial(c, s, id, c.Duration("timeout"), nil)
				if err != nil {
					return err
				}
				defer cl.close()
				// A peers round trip: the relay answers after the backlog it pushed on hello.
				ctx, cancel := context.WithTimeout(c.Context, 5*time.Second)
				cl.l.RequestPeers(ctx)
				cancel()
				in = cl.in
			}
			es := in.List(inbox.Query{})
			if len(es) == 0 && c.Duration("wait") > 0 {
				t := time.NewTimer(c.Duration("wait"))
				defer t.Stop()
				for len(es) == 0 {
					ch := in.Changed()
					select {
					case <-ch:
					case <-t.C:
						es = in.List(inbox.Query{})
						goto done
					case <-time.After(500 * time.Millisecond):
					}
					es = in.List(inbox.Query{})
				}
			}
		done:
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

func peersCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "peers",
		Usage: "list the sessions online on the relay",
		Flags: []ucli.Flag{asFlag(), timeoutFlag(), jsonFlag()},
		Action: func(c *ucli.Context) error {
			id, err := cliID(c)
			if err != nil {
				return err
			}
			cl, err := dial(c, s, id, c.Duration("timeout"), nil)
			if err != nil {
				return err
			}
			defer cl.close()
			ctx, cancel := context.WithTimeout(c.Context, 5*time.Second)
			defer cancel()
			ps, err := cl.l.RequestPeers(ctx)
			if err != nil {
				return exitf(ExitError, "%v", err)
			}
			var others []protocol.Peer
			for _, p := range ps {
				if p.ID != id {
					others = append(others, p)
				}
			}
			sort.Slice(others, func(i, j int) bool { return others[i].ID < others[j].ID })
			if c.Bool("json") {
				if others == nil {
					others = []protocol.Peer{}
				}
				return printJSON(s, others)
			}
			tw := tabwriter.NewWriter(s.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAGENT\tHOST\tSINCE\tCWD")
			for _, p := range others {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Agent, p.Host, p.ConnectedSince.Local().Format(time.DateTime), p.Cwd)
			}
			return tw.Flush()
		},
	}
}
