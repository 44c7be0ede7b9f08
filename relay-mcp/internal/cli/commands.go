package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/proc"
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
		Description: `Every relay-mcp server registers its id on start and marks it offline on
exit; claude-session registers an id before starting claude.

Examples:
   relay-mcp session register --cwd ~/src/app CC-1
   relay-mcp session list
   relay-mcp session list --json
   relay-mcp session remove CC-1          # exit 6 if there is no such id`,
		Subcommands: []*ucli.Command{
			{
				Name:      "register",
				Usage:     "register a session id (claude-session does this before starting the agent)",
				ArgsUsage: "ID",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "cwd", DefaultText: "the current directory", Usage: "working directory"},
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
					if err := protocol.ValidateID(c.Args().First()); err != nil {
						return exitf(ExitUsage, "bad id: %v", err)
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
		ArgsUsage: "[bash|zsh|fish]   (default: the shell named by $SHELL)",
		Description: `claude-session ID [claude args...] registers ID and starts claude with
CLAUDE_RELAY_SESSION_ID=ID, so its relay-mcp connects as ID;
claude-sessions lists the registry.

Examples:
   echo 'eval "$(relay-mcp shell-init bash)"' >> ~/.bashrc
   echo 'eval "$(relay-mcp shell-init zsh)"' >> ~/.zshrc
   echo 'relay-mcp shell-init fish | source' >> ~/.config/fish/config.fish
   claude-session CC-1 --continue`,
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
	id     string
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

// idChoice is an id a one-shot command may connect as.
type idChoice struct {
	id string
	// explicit: the user named it (--as, --id, the session variables). When
	// it is online elsewhere the command says so and stops; a default id
	// falls back to the next choice instead.
	explicit bool
}

// dialOptions say how a one-shot command connects.
type dialOptions struct {
	timeout  time.Duration
	quiet    bool // no presence, no peer list in welcome (hello.quiet)
	takeover bool // replace a live connection with the id (no hello.no_takeover)
	outbox   bool // flush and use the id's outbox (chat); one-shots leave it alone
	onMsg    func(*inbox.Inbox, []inbox.Entry)
	onPeer   func(protocol.Presence)
	onMail   func(protocol.Mail)
	agent    string // overrides the guessed agent kind shown to peers
	label    string // overrides --label
}

// errInUse is a refused hello: the id is online and takeover was not asked for.
type errInUse struct{ id string }

func (e *errInUse) Error() string { return e.id + " is online" }

// dialID connects as one id.
func dialID(c *ucli.Context, cfg *config, id string, o dialOptions) (*client, error) {
	if err := ensureRelay(c.Context, cfg); err != nil {
		return nil, exitf(ExitUnreachable, "%v", err)
	}
	dir := filepath.Join(cfg.home, "inbox", id)
	in, err := inbox.Open(dir, inbox.Options{})
	if err != nil {
		return nil, exitf(ExitError, "%v", err)
	}
	var out *inbox.Outbox
	if o.outbox {
		if out, err = inbox.OpenOutbox(dir, 0); err != nil {
			in.Close()
			return nil, exitf(ExitError, "%v", err)
		}
	}
	ctx, cancel := context.WithCancel(c.Context)
	cl := &client{cfg: cfg, id: id, in: in, cancel: cancel}
	hello := helloFor(cfg, id)
	hello.Quiet, hello.NoTakeover = o.quiet, !o.takeover
	if o.agent != "" {
		hello.Agent = o.agent
	}
	if o.label != "" {
		hello.Label = o.label
	}
	lc := link.Config{URL: cfg.url, URLs: cfg.urls, Token: cfg.token, TLS: cfg.tls, Hello: hello, Inbox: in, Outbox: out, Logger: cfg.logger, OnPresence: o.onPeer, OnMail: o.onMail}
	if o.onMsg != nil {
		lc.OnMessages = func(es []inbox.Entry) { o.onMsg(in, es) }
	}
	cl.l = link.New(lc)
	cl.wg.Add(1)
	go func() { defer cl.wg.Done(); cl.l.Run(ctx) }()
	if err := waitConnected(ctx, cl.l, o.timeout, true); err != nil {
		cl.cancel()
		cl.wg.Wait()
		in.Close()
		if st := cl.l.Status(); st.State == link.StateStopped && st.StopCode == protocol.CloseIDInUse {
			return nil, &errInUse{id}
		}
		return nil, err
	}
	return cl, nil
}

// dial connects as the first of choices that is not online elsewhere. An
// explicit choice that is online ends with ExitInUse and names the holder.
func dial(c *ucli.Context, cfg *config, choices []idChoice, o dialOptions) (*client, error) {
	for i, ch := range choices {
		cl, err := dialID(c, cfg, ch.id, o)
		var iu *errInUse
		if !errors.As(err, &iu) {
			return cl, err
		}
		if ch.explicit || i == len(choices)-1 {
			return nil, exitf(ExitInUse, "%s", inUseMessage(cfg, ch.id))
		}
		cfg.logger.Debug("id online elsewhere; trying the next", "id", ch.id)
	}
	return nil, exitf(ExitUsage, "no id to connect as")
}

// inUseMessage says who holds id, as far as this machine's registry knows,
// and what the user can do.
func inUseMessage(cfg *config, id string) string {
	who := "another connection holds it (not a live session in this machine's registry: another machine, another RELAY_HOME, or a client that does not register)"
	if x, ok := localHolder(registry.Open(cfg.home, cfg.logger), id); ok {
		var meta []string
		for _, kv := range [][2]string{{"agent", x.Agent}, {"host", x.Host}, {"cwd", x.Cwd}} {
			if kv[1] != "" {
				meta = append(meta, kv[0]+" "+kv[1])
			}
		}
		who = fmt.Sprintf("relay-mcp pid %d holds it (%s)", x.PID, strings.Join(meta, ", "))
	}
	return fmt.Sprintf("%s is online: %s. Not taking it over; pass --as/--id with another id, or --takeover to knock that session offline (it will not reconnect).", id, who)
}

// localHolder returns the registry entry of a live process on this machine
// that has id online.
func localHolder(reg *registry.Registry, id string) (registry.Session, bool) {
	ls, err := reg.List()
	if err != nil {
		return registry.Session{}, false
	}
	for _, x := range ls {
		if x.ID == id && x.Online && x.PID > 0 && x.PID != os.Getpid() && proc.Alive(x.PID) {
			return x, true
		}
	}
	return registry.Session{}, false
}

// cliChoices are the ids a one-shot command connects as: --as when given;
// for send, this shell's session id (CLAUDE_RELAY_SESSION_ID, --client-id,
// RELAY_CLIENT_ID) when one is set, so a message goes out under the id a
// reply should reach; else cli-HOST (one stable id per machine, so replies
// to it can be read with receive --id cli-HOST and the relay's session list
// does not grow with every run), else cli-HOST-PID when another command
// holds cli-HOST.
func cliChoices(c *ucli.Context, sessionIDs bool) ([]idChoice, error) {
	if as := c.String("as"); as != "" {
		if err := protocol.ValidateID(as); err != nil {
			return nil, exitf(ExitUsage, "--as: %v", err)
		}
		return []idChoice{{id: as, explicit: true}}, nil
	}
	if sessionIDs && (os.Getenv(EnvSessionID) != "" || c.String("client-id") != "") {
		id, err := sessionID(c)
		if err != nil {
			return nil, err
		}
		return []idChoice{{id: id, explicit: true}}, nil
	}
	host, _ := os.Hostname()
	return []idChoice{{id: CLIID(host)}, {id: "cli-" + DefaultID(host, os.Getpid())}}, nil
}

func asFlag(def string) ucli.Flag {
	return &ucli.StringFlag{Name: "as", DefaultText: def, Usage: "connect as this id; if a live session holds it, exit 7 and name it (see --takeover)"}
}

func takeoverFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "takeover", Usage: "connect even if a live session holds the id, knocking it offline for good (4409)"}
}

func timeoutFlag() ucli.Flag {
	return &ucli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "how long to try to reach the relay"}
}

func sendCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:      "send",
		Usage:     "send one message: relay-mcp send CC-2 'tests pass' (TO: id, ids separated by commas, or '*'; TEXT '-' reads stdin)",
		ArgsUsage: "TO TEXT",
		Description: `Sends as --as, else as this shell's session id (CLAUDE_RELAY_SESSION_ID,
--client-id, RELAY_CLIENT_ID), else as cli-HOST. Prints the message id and
each recipient's outcome (delivered, queued, unknown, full). It never takes
an id over from a live session unless --takeover is given (exit 7).

A send is safe to retry: if the connection drops before the relay answers,
send reconnects and resends it with the same ref, and the relay delivers it
once. Across runs, pass the same --ref (and --as) to get the same guarantee.

Examples:
   relay-mcp send CC-2 'tests pass on main'
   relay-mcp send CC-2,CODEX 'rebased; please pull'
   relay-mcp send '*' 'relay restarts in 5 minutes'
   git log -1 | relay-mcp send --thread release CC-2 -
   relay-mcp send --as CC-1 --ref deploy-42 CC-2 'deployed'   # rerun-safe

Exit codes: 0 sent, 2 usage, 3 relay unreachable (or not confirmed),
4 not stored for some recipient, 5 refused by the relay, 7 the --as id is online.`,
		Flags: []ucli.Flag{
			asFlag("the session id (CLAUDE_RELAY_SESSION_ID, --client-id, RELAY_CLIENT_ID); else cli-HOST, or cli-HOST-PID while another command uses cli-HOST"), takeoverFlag(), timeoutFlag(), jsonFlag(),
			&ucli.StringFlag{Name: "thread", DefaultText: "none", Usage: "conversation name"},
			&ucli.StringFlag{Name: "reply-to", DefaultText: "none", Usage: "id of the message this answers"},
			&ucli.StringFlag{Name: "ref", DefaultText: "a random ref", Usage: "the send's ref (up to 64 characters): a rerun with the same --as, --ref and text is delivered once"},
			&ucli.BoolFlag{Name: "queue-if-unknown", Usage: "keep the message for an id the relay has never seen"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() < 2 {
				return exitf(ExitUsage, "usage: relay-mcp send TO TEXT")
			}
			choices, err := cliChoices(c, true)
			if err != nil {
				return err
			}
			to, err := tools.ParseTo(c.Args().First(), "")
			if err != nil {
				return exitf(ExitUsage, "%v", err)
			}
			ref := c.String("ref")
			if ref == "" {
				ref = link.NewRef()
			} else if len(ref) > protocol.MaxIDLen {
				return exitf(ExitUsage, "--ref is longer than %d characters", protocol.MaxIDLen)
			}
			if rt := c.String("reply-to"); rt != "" {
				if err := protocol.ValidateMessageID(rt); err != nil {
					return exitf(ExitUsage, "--reply-to: %v", err)
				}
			}
			text := strings.Join(c.Args().Slice()[1:], " ")
			if text == "-" {
				b, err := readAll(s)
				if err != nil {
					return exitf(ExitError, "read stdin: %v", err)
				}
				text = b
			}
			if text == "" {
				return exitf(ExitUsage, "nothing to send: TEXT is empty")
			}
			cfg, err := loadCLIConfig(c, s)
			if err != nil {
				return err
			}
			timeout := c.Duration("timeout")
			cl, err := dial(c, cfg, choices, dialOptions{timeout: timeout, quiet: true, takeover: c.Bool("takeover")})
			if err != nil {
				return err
			}
			defer cl.close()
			send := &protocol.Send{Ref: ref, To: to, Body: text, Thread: c.String("thread"), ReplyTo: c.String("reply-to"), QueueIfUnknown: c.Bool("queue-if-unknown")}
			acc, err := sendRetrying(c.Context, cl.l, send, timeout+5*time.Second)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				printJSON(s, acc)
			} else {
				fmt.Fprintf(s.Stdout, "%s", acc.ID)
				for _, o := range acc.Recipients {
					fmt.Fprintf(s.Stdout, " %s=%s", o.ID, o.Status)
				}
				if len(acc.Recipients) == 0 {
					fmt.Fprint(s.Stdout, " (nobody else online)")
				}
				fmt.Fprintln(s.Stdout)
			}
			if w := tools.LoopNudge(acc.Warning); w != "" {
				fmt.Fprintf(s.Stderr, "relay-mcp: %s\n", w)
			}
			if _, unread, _ := cl.in.Counts(); unread > 0 {
				fmt.Fprintf(s.Stderr, "relay-mcp: %d unread message(s) for %s: relay-mcp receive --id %s\n", unread, cl.id, cl.id)
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

// sendRetrying sends f and waits for its accepted. When the connection drops
// first, it waits for the link to reconnect and sends f again with the same
// ref, which the relay answers with the original accepted (no second
// delivery), until within has passed.
func sendRetrying(ctx context.Context, l *link.Link, f *protocol.Send, within time.Duration) (*protocol.Accepted, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	unsure := false
	for {
		ans, err := l.Request(ctx, f.Ref, f)
		var re *link.RelayError
		switch {
		case err == nil:
			if acc, ok := ans.(*protocol.Accepted); ok {
				return acc, nil
			}
			return nil, exitf(ExitError, "relay answered send with %s", ans.Type())
		case errors.As(err, &re) && re.Frame.Code == protocol.CodeRateLimited:
			d := max(time.Duration(re.Frame.RetryAfterMS)*time.Millisecond, 100*time.Millisecond)
			select {
			case <-time.After(d):
				continue
			case <-ctx.Done():
			}
		case errors.As(err, &re):
			return nil, exitf(ExitError, "not sent: %v", err)
		case errors.Is(err, link.ErrDisconnected):
			unsure = true
			fallthrough
		case errors.Is(err, link.ErrOffline):
			if werr := waitConnected(ctx, l, time.Until(deadlineOf(ctx)), false); werr == nil {
				continue
			}
		}
		if !unsure {
			return nil, exitf(ExitUnreachable, "not sent: %s", offlineReason(l))
		}
		return nil, exitf(ExitUnreachable, "not confirmed: the connection to the relay dropped after the message was written, so it may have been delivered (%s). Rerunning with --as %s --ref %s is safe: the relay delivers a send with a ref it has seen once", offlineReason(l), l.ClientID(), f.Ref)
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Minute)
	}
	return d
}

func offlineReason(l *link.Link) string {
	st := l.Status()
	switch {
	case st.StopReason != "":
		return st.StopReason
	case st.LastError != "":
		return st.LastError
	}
	return "relay not reachable at " + st.URL
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

func peersCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "peers",
		Usage: "list the sessions online on the relay",
		Description: `Connects quietly as cli-HOST (or --as), asks the relay who is online and
prints everyone else.

Examples:
   relay-mcp peers
   relay-mcp peers --json | jq -r '.[].id'

Exit codes: 0, 2 usage, 3 relay unreachable, 5 refused by the relay.`,
		Flags: []ucli.Flag{asFlag("cli-HOST, or cli-HOST-PID while another command uses cli-HOST"), takeoverFlag(), timeoutFlag(), jsonFlag()},
		Action: func(c *ucli.Context) error {
			choices, err := cliChoices(c, false)
			if err != nil {
				return err
			}
			cfg, err := loadCLIConfig(c, s)
			if err != nil {
				return err
			}
			cl, err := dial(c, cfg, choices, dialOptions{timeout: c.Duration("timeout"), quiet: true, takeover: c.Bool("takeover")})
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
				if p.ID != cl.id {
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
