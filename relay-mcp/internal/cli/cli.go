// Package cli is relay-mcp's command line. Without a command its flags fill
// the Config of package mcpserver, the stdio MCP server an agent spawns; the
// commands serve people and scripts: the session registry, shell functions,
// installing into agents, hooks, the wake watcher, and one-shot clients of
// the relay (chat, send, receive, peers). App takes its streams as arguments
// so tests run it in-process.
package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/claude-relay/claude-relay/internal/buildinfo"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/autostart"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	ucli "github.com/urfave/cli/v2"
)

// Version is relay-mcp's version: stamped with -ldflags (see package
// buildinfo), else the module version of a go install, else "dev".
var Version = buildinfo.Get().Version

// Exit codes of relay-mcp. Scripts may rely on them.
const (
	ExitOK          = 0
	ExitError       = 1 // anything else
	ExitUsage       = 2 // bad arguments or configuration (a bad id, a bad URL)
	ExitUnreachable = 3 // the relay could not be reached
	ExitNotAll      = 4 // send: some recipients unknown or full (nothing stored for them)
	ExitStopped     = 5 // the relay said not to reconnect (replaced, unauthorized)
	ExitNotFound    = 6 // session remove: no such id
	ExitInUse       = 7 // the id asked for is online elsewhere and --takeover was not given
)

// Env names read by relay-mcp.
const (
	EnvSessionID = "CLAUDE_RELAY_SESSION_ID"
	EnvClientID  = "RELAY_CLIENT_ID"
	EnvHome      = "RELAY_HOME"
)

// Streams are the process's standard streams.
type Streams struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Main runs relay-mcp with args (args[0] is the program name) and returns
// the exit code.
func Main(ctx context.Context, args []string, s Streams) int {
	app := App(s)
	err := app.RunContext(ctx, args)
	if err == nil {
		return ExitOK
	}
	var ec ucli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(s.Stderr, "relay-mcp: "+msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(s.Stderr, "relay-mcp: "+err.Error())
	return ExitError
}

func exitf(code int, format string, args ...any) error {
	return ucli.Exit(fmt.Sprintf(format, args...), code)
}

// App returns the relay-mcp command line.
func App(s Streams) *ucli.App {
	app := &ucli.App{
		Name:        "relay-mcp",
		Usage:       "the agent's side of claude-relay: a stdio MCP server, and tools for people and scripts",
		UsageText:   "relay-mcp [options]            (the MCP server, as an agent spawns it)\nrelay-mcp command [options] [arguments...]",
		Description: appDescription,
		Version:     Version,
		Reader:      s.Stdin,
		Writer:      s.Stdout,
		ErrWriter:   s.Stderr,
		Flags:       globalFlags(),
		Action:      func(c *ucli.Context) error { return serve(c, s) },
		Commands: []*ucli.Command{
			sessionCommand(s),
			shellInitCommand(s),
			chatCommand(s),
			sendCommand(s),
			receiveCommand(s),
			hookCommand(s),
			peersCommand(s),
			watchCommand(s),
			installCommand(s),
			doctorCommand(s),
			{
				Name:  "version",
				Usage: "print the version, commit, build date and protocol version",
				Action: func(c *ucli.Context) error {
					fmt.Fprintln(s.Stdout, buildinfo.Get().String("relay-mcp", protocol.Version))
					return nil
				},
			},
		},
		HideVersion:          false,
		EnableBashCompletion: false,
		ExitErrHandler:       func(*ucli.Context, error) {}, // Main prints and exits
	}
	acceptGlobalsEverywhere(app)
	return app
}

const appDescription = `With no command, relay-mcp is the stdio MCP server an agent spawns: it
connects to relayd in the background (tools answer at once even while the
relay is down), keeps this session's inbox in $RELAY_HOME/inbox/ID and gives
the agent the relay_send, relay_receive, relay_peers, relay_status,
relay_sessions and relay_clear_history tools. Its id is
CLAUDE_RELAY_SESSION_ID, else --client-id, else RELAY_CLIENT_ID, else
hostname-pid. Logs go to stderr (or --log-file): stdout is the MCP channel.

Examples:
   claude mcp add relay -- relay-mcp                  # add it to Claude Code
   CLAUDE_RELAY_SESSION_ID=CC-1 claude                # a session named CC-1
   eval "$(relay-mcp shell-init bash)"; claude-session CC-2
   relay-mcp chat --id ME                             # talk to the sessions yourself
   relay-mcp send CC-2 'tests pass'                   # one message from a script
   relay-mcp receive --id CC-1 --wait 30s
   relay-mcp peers
   relay-mcp watch --for CODEX --exec 'codex exec resume --last "check your relay mail"'
   relay-mcp install claude --hooks --write           # sessions see their mail unasked
   RELAY_URL=ws://10.0.0.5:9999 RELAY_TOKEN=... relay-mcp peers

The options above may also follow a command's name (relay-mcp receive
--relay-url ws://127.0.0.1:7777 --id CC-1).

Exit codes: 0 ok, 1 error, 2 usage or configuration, 3 relay unreachable,
4 send not stored for some recipient, 5 refused by the relay (replaced,
unauthorized), 6 no such session, 7 id online elsewhere.`

func globalFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "client-id", EnvVars: []string{EnvClientID}, DefaultText: "hostname-pid", Usage: "this session's id (A-Z a-z 0-9 . _ -, up to 64); " + EnvSessionID + " wins over it"},
		&ucli.StringFlag{Name: "relay-url", EnvVars: []string{"RELAY_URL"}, Value: "ws://127.0.0.1:9999", Usage: "relay address; a bare ws://host:port means /v1/ws; several, comma-separated, are the nodes of a relayd cluster: relay-mcp uses the first that answers and fails over to the others"},
		&ucli.StringFlag{Name: "token", EnvVars: []string{"RELAY_TOKEN"}, DefaultText: "none", Usage: "relay token (prefer the environment variable: flags show in ps)"},
		&ucli.StringFlag{Name: "token-file", EnvVars: []string{"RELAY_TOKEN_FILE"}, DefaultText: "none", Usage: "file holding the relay token"},
		&ucli.StringFlag{Name: "ca-file", EnvVars: []string{"RELAY_CA_FILE"}, DefaultText: "the system's roots", Usage: "PEM file of the CA that signed a wss:// relay's certificate (for a self-signed or private CA; only it is trusted then)"},
		&ucli.StringFlag{Name: "home", EnvVars: []string{EnvHome}, DefaultText: "~/claude-relay", Usage: "state directory: inboxes and the session registry"},
		&ucli.StringFlag{Name: "agent", EnvVars: []string{"RELAY_AGENT"}, DefaultText: "guessed from the environment", Usage: "agent kind shown to peers (claude-code, codex, gemini, cursor …)"},
		&ucli.StringFlag{Name: "label", EnvVars: []string{"RELAY_LABEL"}, DefaultText: "none", Usage: "free text shown to peers: what this session is for"},
		&ucli.StringFlag{Name: "autostart", EnvVars: []string{autostart.Env}, Value: "on", Usage: "on or off: when the relay URL is ws:// on loopback and nothing listens there, start relayd (found beside relay-mcp, else on PATH) detached, with its store in $RELAY_HOME/data and its log in $RELAY_HOME/logs/relayd.log"},
		&ucli.StringFlag{Name: "tools", EnvVars: []string{"RELAY_TOOLS"}, Value: "core", Usage: "tool profile of the MCP server: core (six tools, the smallest schema cost per turn) or full (adds relay_thread, relay_set_status, relay_rename)"},
		&ucli.BoolFlag{Name: "structured-content", EnvVars: []string{"RELAY_STRUCTURED_CONTENT"}, Usage: "also put structured content (JSON) beside the text in tool results, for programs that read it; off by default because Claude Code then hands the model the JSON instead of the text written for it"},
		&ucli.BoolFlag{Name: "channels", EnvVars: []string{"RELAY_CHANNELS"}, Usage: "declare the experimental claude/channel capability and push each new message as a notifications/claude/channel event (Claude Code's research-preview channels: start claude with --dangerously-load-development-channels server:NAME)"},
		&ucli.StringFlag{Name: "log-file", EnvVars: []string{"RELAY_LOG_FILE"}, DefaultText: "stderr", Usage: "write logs to this file (never stdout: it is the MCP channel)"},
		&ucli.StringFlag{Name: "log-level", EnvVars: []string{"RELAY_LOG_LEVEL"}, Value: "info", Usage: "debug, info, warn or error (commands other than the server log warnings only unless this is set)"},
		&ucli.StringFlag{Name: "log-format", EnvVars: []string{"RELAY_LOG_FORMAT"}, Value: "text", Usage: "text or json"},
	}
}

// config is what every command derives from the global flags.
type config struct {
	home  string
	url   string   // the first of urls: the one relay when there is one
	urls  []string // every relay given, in order (a cluster's nodes)
	token string
	tls   *tls.Config // from --ca-file; nil for the system's roots
	agent string
	label string
	// autostart: start relayd when the URL is loopback and nothing listens.
	autostart bool
	logger    *slog.Logger
	// sdkLogger is for the MCP SDK, which logs every session step at info:
	// warnings only, unless --log-level debug.
	sdkLogger *slog.Logger
	closer    io.Closer
}

func loadConfig(c *ucli.Context, s Streams) (*config, error) {
	return loadConfigLevel(c, s, c.String("log-level"))
}

// loadCLIConfig is loadConfig for commands a person runs: their link's
// connection chatter is logged only with an explicit --log-level.
func loadCLIConfig(c *ucli.Context, s Streams) (*config, error) {
	level := c.String("log-level")
	if !c.IsSet("log-level") {
		level = "warn"
	}
	return loadConfigLevel(c, s, level)
}

func loadConfigLevel(c *ucli.Context, s Streams, level string) (*config, error) {
	cfg := &config{}
	home := c.String("home")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, exitf(ExitUsage, "cannot find the home directory; set RELAY_HOME: %v", err)
		}
		home = filepath.Join(h, "claude-relay")
	}
	cfg.home = home
	urls, err := link.ParseURLs([]string{c.String("relay-url")})
	if err != nil {
		return nil, exitf(ExitUsage, "%v", err)
	}
	cfg.url, cfg.urls = urls[0], urls
	cfg.token = c.String("token")
	if tf := c.String("token-file"); tf != "" {
		b, err := os.ReadFile(tf)
		if err != nil {
			return nil, exitf(ExitUsage, "read token file: %v", err)
		}
		cfg.token = strings.TrimSpace(string(b))
	}
	if ca := c.String("ca-file"); ca != "" {
		if cfg.tls, err = link.LoadCA(ca); err != nil {
			return nil, exitf(ExitUsage, "%v", err)
		}
	}
	cfg.agent = c.String("agent")
	if cfg.agent == "" {
		cfg.agent = guessAgent()
	}
	cfg.label = c.String("label")
	if cfg.autostart, err = autostart.Enabled(c.String("autostart")); err != nil {
		return nil, exitf(ExitUsage, "%v", err)
	}

	var w io.Writer = s.Stderr
	if lf := c.String("log-file"); lf != "" {
		f, err := os.OpenFile(lf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, exitf(ExitUsage, "open log file: %v", err)
		}
		w, cfg.closer = f, f
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, exitf(ExitUsage, "log level %q: use debug, info, warn or error", level)
	}
	sdkLvl := max(lvl, slog.LevelWarn)
	if lvl <= slog.LevelDebug {
		sdkLvl = lvl
	}
	switch c.String("log-format") {
	case "json":
		cfg.logger = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl}))
		cfg.sdkLogger = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: sdkLvl}))
	case "text", "":
		cfg.logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
		cfg.sdkLogger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: sdkLvl}))
	default:
		return nil, exitf(ExitUsage, "log format %q: use text or json", c.String("log-format"))
	}
	for _, u := range cfg.urls {
		if cfg.token != "" && link.Cleartext(u) {
			cfg.logger.Warn("the relay token and messages travel unencrypted to " + u + ": use wss:// (relayd --tls-cert) or an SSH tunnel to ws://127.0.0.1")
		}
	}
	return cfg, nil
}

func guessAgent() string {
	switch {
	case os.Getenv("CLAUDECODE") != "" || os.Getenv("CLAUDE_CODE_ENTRYPOINT") != "":
		return "claude-code"
	case os.Getenv("CODEX_HOME") != "" || os.Getenv("CODEX_SANDBOX") != "":
		return "codex"
	case os.Getenv("GEMINI_CLI") != "":
		return "gemini"
	case os.Getenv("CURSOR_TRACE_ID") != "":
		return "cursor"
	}
	return ""
}

// ResolveID picks the client id: CLAUDE_RELAY_SESSION_ID, then --client-id,
// then RELAY_CLIENT_ID, then hostname-pid. A given id is validated, never
// silently rewritten.
func ResolveID(sessionEnv, flag, clientEnv, host string, pid int) (string, string, error) {
	for _, c := range []struct{ v, src string }{{sessionEnv, EnvSessionID}, {flag, "--client-id (or " + EnvClientID + ")"}, {clientEnv, EnvClientID}} {
		if c.v == "" {
			continue
		}
		if err := protocol.ValidateID(c.v); err != nil {
			return "", c.src, fmt.Errorf("%s: %s", c.src, strings.TrimPrefix(err.Error(), string(protocol.CodeBadID)+": "))
		}
		return c.v, c.src, nil
	}
	return DefaultID(host, pid), "hostname-pid", nil
}

// DefaultID is hostname-pid with the host name reduced to id characters.
func DefaultID(host string, pid int) string {
	suffix := fmt.Sprintf("-%d", pid)
	return hostPart(host, protocol.MaxIDLen-len(suffix)) + suffix
}

// CLIID is the id one-shot commands connect as: cli-HOST, one per machine.
func CLIID(host string) string {
	return "cli-" + hostPart(host, protocol.MaxIDLen-len("cli-"))
}

// hostPart reduces a host name to id characters, at most max of them.
func hostPart(host string, max int) string {
	var b strings.Builder
	for _, r := range host {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		case r == '.':
			goto done // mbp.local → mbp
		default:
			b.WriteByte('-')
		}
	}
done:
	h := strings.TrimLeft(b.String(), "-.")
	if h == "" {
		h = "host"
	}
	if len(h) > max {
		h = h[:max]
	}
	return h
}

// sessionID resolves the id of this process from the flags and environment.
func sessionID(c *ucli.Context) (string, error) {
	host, _ := os.Hostname()
	flag := ""
	if c.IsSet("client-id") {
		flag = c.String("client-id")
	}
	id, _, err := ResolveID(os.Getenv(EnvSessionID), flag, os.Getenv(EnvClientID), host, os.Getpid())
	if err != nil {
		return "", exitf(ExitUsage, "bad client id — %v", err)
	}
	return id, nil
}

// waitConnected waits until l is connected, stopped, or timeout passes;
// with refusedFails, also until a dial is refused (nothing listens: waiting
// out the timeout would not help a first connection).
func waitConnected(ctx context.Context, l *link.Link, timeout time.Duration, refusedFails bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ch := l.StateChanged()
		st := l.Status()
		switch st.State {
		case link.StateConnected:
			return nil
		case link.StateStopped:
			return exitf(ExitStopped, "%s", st.StopReason)
		case link.StateReconnecting:
			if st.Refused && refusedFails {
				return exitf(ExitUnreachable, "%s", st.LastError)
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			msg := st.LastError
			if msg == "" {
				msg = "relay not reachable at " + st.URL
			}
			return exitf(ExitUnreachable, "%s", msg)
		}
	}
}

// ensureRelay starts relayd when the configuration asks for it and the
// relay URL is loopback with nothing listening (see package autostart).
func ensureRelay(ctx context.Context, cfg *config) error {
	if !cfg.autostart {
		return nil
	}
	_, err := autostart.Ensure(ctx, autostart.Options{URL: cfg.url, URLs: cfg.urls, Home: cfg.home, Logger: cfg.logger})
	return err
}
