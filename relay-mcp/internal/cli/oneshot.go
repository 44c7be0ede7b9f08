package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/proc"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/registry"
	ucli "github.com/urfave/cli/v2"
)

// One-shot clients: send, receive and peers connect, do one thing, and close.

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
	hello := link.LocalHello(id, cfg.agent, cfg.label)
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
