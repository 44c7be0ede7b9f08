// Package mcpserver is relay-mcp without a command: the stdio MCP server an
// agent spawns. Run serves a Config — the session's inbox and outbox, its
// registry entry, the link to the relay and the tools — until stdin closes,
// the parent process exits or the context ends. The command line fills the
// Config from flags; tests build one.
package mcpserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/internal/buildinfo"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/autostart"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/hook"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/registry"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/tools"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/watchdog"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// exitDeadline bounds shutdown: relay-mcp must be gone within 10 s of its
// parent or stdin going away, whatever hangs.
const exitDeadline = 8 * time.Second

type nopWriteCloser struct{ io.Writer }

// publishLinkState keeps the inbox directory's link.json true: the hooks
// read it to wait for the first sync and to say when the relay is down.
func publishLinkState(ctx context.Context, l *link.Link, home string, log *slog.Logger) {
	pid := os.Getpid()
	var last hook.LinkState
	for {
		stateCh := l.StateChanged()
		caught := l.CaughtUp()
		st := l.Status()
		s := hook.LinkState{PID: pid, State: string(st.State), URL: st.URL, At: time.Now().UTC()}
		if st.State != link.StateConnected {
			s.Error = st.LastError
			if st.State == link.StateStopped {
				s.Error = st.StopReason
			}
		}
		if caught != nil {
			select {
			case <-caught:
				s.Synced = true
			default:
			}
		}
		if s.State != last.State || s.Synced != last.Synced || s.Error != last.Error {
			dir := filepath.Join(home, "inbox", st.ClientID)
			if err := hook.WriteLinkState(dir, s); err != nil {
				log.Debug("could not write link.json for the hooks", "err", err)
			}
			last = s
		}
		if st.State == link.StateClosed {
			return
		}
		if s.Synced {
			caught = nil // closed: nothing more to wait for on it
		}
		select {
		case <-ctx.Done():
			// Closed: the wake listener stands down at once (its session
			// is ending) instead of being waited for.
			s.State, s.Synced, s.At = string(link.StateClosed), false, time.Now().UTC()
			if err := hook.WriteLinkState(filepath.Join(home, "inbox", l.ClientID()), s); err != nil {
				log.Debug("could not write link.json for the hooks", "err", err)
			}
			return
		case <-stateCh:
		case <-caught:
		}
	}
}

func (nopWriteCloser) Close() error { return nil }

// Config is what relay-mcp's MCP server runs with, resolved: the global
// flags and their environment variables fill one (package cli); tests
// build one and call Run, as main does through cli.Main.
type Config struct {
	ID   string // this session's client id
	Home string // state directory: inboxes and the session registry
	URL  string // the relay, ws://host:port/v1/ws
	// URLs, when set, are relays serving the same mailboxes (a cluster's
	// nodes) to fail over between, in order; URL is then the first.
	URLs  []string
	Token string      // the relay token; "" for none
	TLS   *tls.Config // trust for a wss:// relay; nil for the system's roots
	Agent string      // agent kind shown to peers
	Label string      // what this session is for, shown to peers
	Tools string      // tool profile: core or full (tools.ParseProfile)
	// Structured adds structured content to tool results (for programs;
	// models read the text).
	Structured bool
	// Channels declares Claude Code's experimental claude/channel
	// capability and pushes each new message as a channel event.
	Channels bool
	// Autostart starts relayd when URL is loopback and nothing listens
	// there (package autostart).
	Autostart bool
	// Logger gets relay-mcp's logs (never stdout: it is the MCP channel),
	// SDKLogger the MCP SDK's; nil discards them.
	Logger, SDKLogger *slog.Logger
}

// ConfigError is a Config that cannot be served: a bad id, no state
// directory, an unknown tool profile. relay-mcp exits with its usage code.
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

func configErrorf(format string, args ...any) error {
	return &ConfigError{msg: fmt.Sprintf(format, args...)}
}

// Run serves the MCP server of cfg on stdin and stdout until stdin closes,
// the parent process exits or ctx ends. A Config it cannot serve is a
// *ConfigError.
func Run(parent context.Context, cfg Config, stdin io.Reader, stdout io.Writer) error {
	started := time.Now()
	version := buildinfo.Get().Version
	profile, err := tools.ParseProfile(cfg.Tools)
	if err != nil {
		return configErrorf("--tools / RELAY_TOOLS: %v", err)
	}
	discard := slog.New(slog.DiscardHandler)
	if cfg.Logger == nil {
		cfg.Logger = discard
	}
	if cfg.SDKLogger == nil {
		cfg.SDKLogger = discard
	}
	id := cfg.ID
	if err := protocol.ValidateID(id); err != nil {
		return configErrorf("bad client id — %v", err)
	}
	if cfg.Home == "" {
		return configErrorf("no state directory (Config.Home, --home)")
	}
	log := cfg.Logger.With("id", id)
	in, out, err := openMailbox(cfg.Home, id)
	if err != nil {
		return err
	}
	defer in.Close()

	hello := link.LocalHello(id, cfg.Agent, cfg.Label)
	reg := registry.Open(cfg.Home, log)
	if err := reg.Register(registry.Session{ID: id, Host: hello.Host, PID: hello.PID, Cwd: hello.Cwd, Agent: hello.Agent, Label: hello.Label, Online: true}); err != nil {
		log.Warn("could not register the session", "err", err)
	}
	defer func() {
		if err := reg.SetOffline(id, hello.PID); err != nil {
			log.Warn("could not mark the session offline", "err", err)
		}
	}()

	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	var server *mcp.Server
	l := link.New(link.Config{
		URL: cfg.URL, URLs: cfg.URLs, Token: cfg.Token, TLS: cfg.TLS, Hello: hello, Inbox: in, Outbox: out, Logger: log,
	})
	defer func() { // after relay_rename the registry holds this process under its new id
		if cur := l.ClientID(); cur != id {
			if err := reg.SetOffline(cur, hello.PID); err != nil {
				log.Warn("could not mark the session offline", "id", cur, "err", err)
			}
		}
	}()
	var linkWG sync.WaitGroup
	linkWG.Add(1)
	go func() {
		defer linkWG.Done()
		if cfg.Autostart {
			if _, err := autostart.Ensure(ctx, autostart.Options{URL: cfg.URL, URLs: cfg.URLs, Home: cfg.Home, Logger: cfg.Logger}); err != nil {
				log.Warn("could not start relayd", "err", err)
			}
		}
		l.Run(ctx)
	}()

	opts := &mcp.ServerOptions{
		Instructions: tools.Instructions,
		Logger:       cfg.SDKLogger.With("id", id),
	}
	tools.SetSubscriptions(opts)
	var channel *tools.ChannelTransport
	if cfg.Channels {
		opts.Capabilities = tools.ChannelCapabilities()
		channel = &tools.ChannelTransport{}
	}
	server = mcp.NewServer(&mcp.Implementation{Name: "claude-relay", Version: version}, opts)
	deps := &tools.Deps{Link: l, Inbox: in, Registry: reg, Host: hello.Host, Started: started, Version: version, Structured: cfg.Structured, Channel: channel}
	tools.RegisterProfile(server, profile, deps)
	tools.RegisterInbox(server, deps)
	linkWG.Add(1)
	go func() { defer linkWG.Done(); tools.Watch(ctx, server, deps) }() // notifications and read receipts
	linkWG.Add(1)
	go func() { defer linkWG.Done(); publishLinkState(ctx, l, cfg.Home, log) }() // for the hooks

	why := make(chan string, 2)
	go func() {
		select {
		case r := <-watchdog.Watch(ctx, watchdog.Options{}):
			why <- r
			cancel()
		case <-ctx.Done():
		}
	}()

	var transport mcp.Transport = &mcp.StdioTransport{}
	if stdin != os.Stdin || stdout != os.Stdout {
		transport = &mcp.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWriteCloser{stdout}}
	}
	if channel != nil {
		channel.Transport = transport
		transport = channel
	}
	log.Info("relay-mcp serving on stdio", "relay", l.URL(), "home", cfg.Home, "version", version)
	err = server.Run(ctx, transport)
	reason := "stdin closed"
	select {
	case reason = <-why:
	default:
		if parent.Err() != nil {
			reason = "signal"
		}
	}
	log.Info("relay-mcp exiting", "reason", reason, "err", err)

	// Leave within the deadline even if closing hangs.
	hard := time.AfterFunc(exitDeadline, func() {
		log.Error("shutdown took too long; exiting")
		os.Exit(1) // relay-mcp's exit code for an error
	})
	defer hard.Stop()
	cancel()
	linkWG.Wait() // the link closes its socket with 1000
	return nil
}

// openMailbox opens the inbox and outbox of id under home.
func openMailbox(home, id string) (*inbox.Inbox, *inbox.Outbox, error) {
	dir := filepath.Join(home, "inbox", id)
	in, err := inbox.Open(dir, inbox.Options{})
	if err != nil {
		return nil, nil, err
	}
	out, err := inbox.OpenOutbox(dir, 0)
	if err != nil {
		in.Close()
		return nil, nil, err
	}
	return in, out, nil
}
