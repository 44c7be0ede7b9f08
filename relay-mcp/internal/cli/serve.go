package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/hook"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/registry"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/tools"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/watchdog"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	ucli "github.com/urfave/cli/v2"
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

// serve runs the stdio MCP server until stdin closes, the parent exits or
// the context ends.
func serve(c *ucli.Context, s Streams) error {
	if c.Args().Len() > 0 {
		return exitf(ExitUsage, "unknown command %q (see relay-mcp --help)", c.Args().First())
	}
	started := time.Now()
	profile, err := tools.ParseProfile(c.String("tools"))
	if err != nil {
		return exitf(ExitUsage, "--tools / RELAY_TOOLS: %v", err)
	}
	cfg, err := loadConfig(c, s)
	if err != nil {
		return err
	}
	if cfg.closer != nil {
		defer cfg.closer.Close()
	}
	id, err := sessionID(c)
	if err != nil {
		return err
	}
	log := cfg.logger.With("id", id)
	in, out, err := openMailbox(cfg.home, id)
	if err != nil {
		return exitf(ExitError, "%v", err)
	}
	defer in.Close()

	hello := helloFor(cfg, id)
	reg := registry.Open(cfg.home, log)
	if err := reg.Register(registry.Session{ID: id, Host: hello.Host, PID: hello.PID, Cwd: hello.Cwd, Agent: hello.Agent, Label: hello.Label, Online: true}); err != nil {
		log.Warn("could not register the session", "err", err)
	}
	defer func() {
		if err := reg.SetOffline(id, hello.PID); err != nil {
			log.Warn("could not mark the session offline", "err", err)
		}
	}()

	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()

	var server *mcp.Server
	l := link.New(link.Config{
		URL: cfg.url, Token: cfg.token, TLS: cfg.tls, Hello: hello, Inbox: in, Outbox: out, Logger: log,
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
		if err := ensureRelay(ctx, cfg); err != nil {
			log.Warn("could not start relayd", "err", err)
		}
		l.Run(ctx)
	}()

	opts := &mcp.ServerOptions{
		Instructions: tools.Instructions,
		Logger:       cfg.sdkLogger.With("id", id),
	}
	tools.SetSubscriptions(opts)
	var channel *tools.ChannelTransport
	if c.Bool("channels") {
		opts.Capabilities = tools.ChannelCapabilities()
		channel = &tools.ChannelTransport{}
	}
	server = mcp.NewServer(&mcp.Implementation{Name: "claude-relay", Version: Version}, opts)
	deps := &tools.Deps{Link: l, Inbox: in, Registry: reg, Host: hello.Host, Started: started, Version: Version, Structured: c.Bool("structured-content"), Channel: channel}
	tools.RegisterProfile(server, profile, deps)
	tools.RegisterInbox(server, deps)
	linkWG.Add(1)
	go func() { defer linkWG.Done(); tools.Watch(ctx, server, deps) }() // notifications and read receipts
	linkWG.Add(1)
	go func() { defer linkWG.Done(); publishLinkState(ctx, l, cfg.home, log) }() // for the hooks

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
	if s.Stdin != os.Stdin || s.Stdout != os.Stdout {
		transport = &mcp.IOTransport{Reader: io.NopCloser(s.Stdin), Writer: nopWriteCloser{s.Stdout}}
	}
	if channel != nil {
		channel.Transport = transport
		transport = channel
	}
	log.Info("relay-mcp serving on stdio", "relay", cfg.url, "home", cfg.home, "version", Version)
	err = server.Run(ctx, transport)
	reason := "stdin closed"
	select {
	case reason = <-why:
	default:
		if c.Context.Err() != nil {
			reason = "signal"
		}
	}
	log.Info("relay-mcp exiting", "reason", reason, "err", err)

	// Leave within the deadline even if closing hangs.
	hard := time.AfterFunc(exitDeadline, func() {
		log.Error("shutdown took too long; exiting")
		os.Exit(ExitError)
	})
	defer hard.Stop()
	cancel()
	linkWG.Wait() // the link closes its socket with 1000
	return nil
}
