// Package app is relayd's command line: the flags (each also read from its
// environment variable) fill a daemon.Config that package daemon serves, and
// the commands an operator runs beside it — doctor, token, service, load,
// version — are here. main only calls Main; tests call Main in-process with
// their own args, stdout and stderr.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/internal/buildinfo"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/daemon"
)

// version returns the stamped version (see package buildinfo), or the
// module version when built by go install, or "dev".
func version() string { return buildinfo.Get().Version }

// Main runs relayd with args (args[0] is the program name) and returns the
// process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := New(stdout, stderr)
	err := a.RunContext(ctx, args)
	if err != nil {
		fmt.Fprintf(stderr, "relayd: %v\n", err)
	}
	return exitCode(err)
}

// exitCode is the process exit code of what Run (or a command) returned:
// 0, the code of a cli exit, or 1.
func exitCode(err error) int {
	var ec cli.ExitCoder
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return ec.ExitCode()
	}
	return 1
}

// New returns relayd's CLI app writing to stdout and stderr.
func New(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "relayd",
		Usage: "the claude-relay daemon: real-time messages between AI coding-agent sessions",
		Description: `relayd routes messages between agent sessions (relay-mcp, the chat client, and
clients of the older Node relay). Agents connect over WebSocket: protocol v1 at /v1/ws,
the older relay's protocol at /. It listens on loopback unless told otherwise.

Examples:
   relayd                                   # serve on 127.0.0.1:9999, data in ~/claude-relay/data
   RELAY_PORT=7777 relayd                   # another port
   relayd --store memory --log-level debug  # nothing on disk, chatty logs
   relayd --listen 0.0.0.0:9999 --token-file ~/.config/claude-relay/token
                                            # reachable from the network, clients need the token
   curl -s 127.0.0.1:9999/healthz           # is it up? (/metrics: Prometheus)
   relayd doctor                            # what is wrong with this setup, and the fix
   relayd service install                   # run it at login (systemd user unit or LaunchAgent)`,
		// Main prints errors and picks the exit code; the default handler
		// would call os.Exit from inside the library.
		ExitErrHandler:         func(*cli.Context, error) {},
		Writer:                 stdout,
		ErrWriter:              stderr,
		HideHelpCommand:        true,
		UseShortOptionHandling: true,
		Flags:                  append(append(serveFlags(), securityFlags()...), clusterFlags()...),
		Action:                 func(c *cli.Context) error { return serve(c, stderr) },
		Commands: []*cli.Command{loadCommand(stdout), tokenCommand(stdout), serviceCommand(stdout), doctorCommand(stdout), convertCommand(stdout), {
			Name:  "version",
			Usage: "print relayd's version, commit, build date and protocol version",
			Action: func(c *cli.Context) error {
				fmt.Fprintln(stdout, buildinfo.Get().String("relayd", protocol.Version))
				return nil
			},
		}},
	}
}

func serveFlags() []cli.Flag {
	d := daemon.DefaultConfig() // the defaults live there
	return []cli.Flag{
		&cli.StringFlag{Name: "listen", Value: d.Listen, EnvVars: []string{"RELAY_LISTEN"},
			Usage: "`ADDR` (host:port) to listen on; loopback by default so nothing off this machine can connect"},
		&cli.IntFlag{Name: "port", EnvVars: []string{"RELAY_PORT"},
			Usage: "`PORT` to listen on, replacing the port of --listen (the older relay's RELAY_PORT)"},
		&cli.StringFlag{Name: "data-dir", EnvVars: []string{"RELAY_DATA_DIR"},
			Usage: "`DIR` for the message store (default: $RELAY_HOME/data, RELAY_HOME defaults to ~/claude-relay)"},
		&cli.StringFlag{Name: "store", Value: d.Store, EnvVars: []string{"RELAY_STORE"},
			Usage: "message store: auto (the store --data-dir already holds; the journal store in a new one), journal (durable, in --data-dir: memory plus an append-only journal; keeps the retained messages in RAM), sqlite (durable, in --data-dir: a SQLite database; for stores of millions of messages, and what relayd before the journal made) or memory (lost on restart; for tests); docs/operations.md, \"The journal store\""},
		&cli.StringFlag{Name: "token-file", EnvVars: []string{"RELAY_TOKEN_FILE"},
			Usage: "`FILE` holding the shared token clients must present (RELAY_TOKEN sets it directly); required to listen beyond loopback"},
		&cli.BoolFlag{Name: "insecure", EnvVars: []string{"RELAY_INSECURE"},
			Usage: "allow listening beyond loopback without a token (anyone who reaches the port can steer your agents)"},
		&cli.StringSliceFlag{Name: "allow-origin", EnvVars: []string{"RELAY_ALLOW_ORIGIN"},
			Usage: "browser Origin host `PATTERN` allowed to open a WebSocket (default: none; pages on other sites are refused)"},
		&cli.DurationFlag{Name: "retention", Value: d.Retention, EnvVars: []string{"RELAY_RETENTION"},
			Usage: "how long a message is kept, read or not (default 7 days: long enough for a weekend away); 0 keeps everything"},
		&cli.IntFlag{Name: "max-store-mb", Value: d.MaxStoreMB, DefaultText: "512 on the journal store, 4096 on sqlite", EnvVars: []string{"RELAY_MAX_STORE_MB"},
			Usage: "most MiB of data the store may hold on disk; past it sends are refused with store_full (nothing stored) until retention or clears free room, so no client can fill the disk (or, on the journal store, the memory); 0 disables"},
		&cli.IntFlag{Name: "max-queue", Value: d.MaxQueue, EnvVars: []string{"RELAY_MAX_QUEUE"},
			Usage: "most unread messages kept for one recipient; senders are told when a mailbox is full"},
		&cli.DurationFlag{Name: "ping-interval", Value: d.PingInterval, EnvVars: []string{"RELAY_PING_INTERVAL"},
			Usage: "keepalive ping period; a client silent for two periods is dropped"},
		&cli.DurationFlag{Name: "hello-timeout", Value: d.HelloTimeout, EnvVars: []string{"RELAY_HELLO_TIMEOUT"},
			Usage: "how long a new connection may take to say hello"},
		&cli.IntFlag{Name: "max-body", Value: d.MaxBody, EnvVars: []string{"RELAY_MAX_BODY"},
			Usage: "largest message body in `BYTES`; bigger sends are refused with too_large (share a file path instead)"},
		&cli.StringFlag{Name: "log-level", Value: d.LogLevel, EnvVars: []string{"RELAY_LOG_LEVEL"},
			Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: d.LogFormat, EnvVars: []string{"RELAY_LOG_FORMAT"},
			Usage: "text or json"},
		&cli.StringFlag{Name: "debug-addr", EnvVars: []string{"RELAY_DEBUG_ADDR"},
			Usage: "serve Go's profiler (/debug/pprof/: CPU, heap, goroutines, execution trace) on this loopback `ADDR`, e.g. 127.0.0.1:6060; off by default"},
	}
}

// listenAddr applies --port to --listen.
func listenAddr(listen string, port int) (string, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q is not host:port (for example 127.0.0.1:9999): %w", listen, err)
	}
	if port != 0 {
		if port < 0 || port > 65535 {
			return "", fmt.Errorf("--port %d is not a TCP port (1-65535)", port)
		}
		p = strconv.Itoa(port)
	}
	return net.JoinHostPort(host, p), nil
}

func readToken(c *cli.Context) (string, error) {
	if t := strings.TrimSpace(os.Getenv("RELAY_TOKEN")); t != "" {
		return t, nil
	}
	path := c.String("token-file")
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading --token-file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("--token-file %s is empty; put a long random token in it (openssl rand -hex 32)", path)
	}
	return t, nil
}

// serve is relayd without a command: the flags fill a daemon.Config, and
// daemon.Run serves it.
func serve(c *cli.Context, stderr io.Writer) error {
	cfg, err := configFrom(c)
	if err != nil {
		return err
	}
	return exitOf(daemon.Run(c.Context, cfg, stderr))
}
