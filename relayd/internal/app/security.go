package app

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/relayd/internal/auth"
	"github.com/claude-relay/claude-relay/relayd/internal/daemon"
)

// securityFlags are the flags of issue 5: per-identity tokens, TLS and the
// limits. The shared token, --insecure and --allow-origin are in serveFlags.
func securityFlags() []cli.Flag {
	d := daemon.DefaultConfig() // the defaults live there; docs/security.md explains each
	return []cli.Flag{
		&cli.StringFlag{Name: "tokens-file", EnvVars: []string{"RELAY_TOKENS_FILE"},
			Usage: "`FILE` of per-identity tokens, one line each: sha256:<hex> <id-glob>[,<id-glob>…]; a token may claim only its ids (make lines with `relayd token new`)"},
		&cli.StringSliceFlag{Name: "allow-host", EnvVars: []string{"RELAY_ALLOW_HOST"},
			Usage: "host name `PATTERN` (no port; globs allowed) a relay without a token answers to besides 127.0.0.1, localhost and IP addresses; other names are refused with 403, which stops web pages reaching the relay by DNS rebinding. Not needed with a token"},
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"RELAY_TLS_CERT"},
			Usage: "PEM certificate `FILE` (with its chain): serve wss:// and https:// instead of ws:// and http:// (needs --tls-key)"},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"RELAY_TLS_KEY"},
			Usage: "PEM private key `FILE` of --tls-cert"},
		&cli.StringFlag{Name: "client-limit", Value: d.Limits.Client.String(), EnvVars: []string{"RELAY_CLIENT_LIMIT"},
			Usage: "requests (send, peers, history …; acks are free) one client id may make, as N/DURATION: a burst of N, refilled N per DURATION; over it the client gets rate_limited with retry_after_ms; 0 disables"},
		&cli.StringFlag{Name: "pair-limit", Value: d.Limits.Pair.String(), EnvVars: []string{"RELAY_PAIR_LIMIT"},
			Usage: "messages one client may send another, as N/DURATION; past it further sends are held (rate_limited, naming the pair and when it may resume). A hard brake set far above real work (an orchestrator handing a worker 100 tasks an hour is a tenth of it); --loop-warn is what notices agents in a loop; 0 disables"},
		&cli.StringFlag{Name: "new-id-limit", Value: d.Limits.NewIDs.String(), EnvVars: []string{"RELAY_NEW_ID_LIMIT"},
			Usage: "mailboxes one client may make for ids the relay has never seen (send with queue_if_unknown), as N/DURATION; past it such sends are refused (rate_limited) so mailboxes nobody reads cannot fill the disk; 0 disables"},
		&cli.StringFlag{Name: "loop-warn", Value: d.Limits.Loop.String(), EnvVars: []string{"RELAY_LOOP_WARN"},
			Usage: "when two clients' exchange looks like a loop, as N/DURATION: N messages between them (both ways) within DURATION, three in four of them replies; their sends still go through, and the sender's accepted carries a warning its agent's tool shows the model; 0 disables"},
		&cli.StringFlag{Name: "global-limit", Value: d.Limits.Global.String(), EnvVars: []string{"RELAY_GLOBAL_LIMIT"},
			Usage: "agent-to-agent messages through the whole relay (each recipient counts), as N/DURATION; catches loops among three or more agents; 0 disables"},
		&cli.StringFlag{Name: "auth-fail-limit", Value: d.AuthFail.String(), EnvVars: []string{"RELAY_AUTH_FAIL_LIMIT"},
			Usage: "requests with a wrong token one IP address may make, as N/DURATION; past it the address gets HTTP 429 whatever token it sends, until the bucket refills, so tokens cannot be guessed fast (requests without a token do not count); 0 disables"},
		&cli.IntFlag{Name: "max-conns", Value: d.MaxConns, EnvVars: []string{"RELAY_MAX_CONNS"},
			Usage: "most open connections; more are refused with HTTP 503 before the upgrade; 0 disables"},
		&cli.IntFlag{Name: "max-conns-per-addr", Value: d.MaxConnsPerAddr, EnvVars: []string{"RELAY_MAX_CONNS_PER_ADDR"},
			Usage: "most open connections from one IP address (an SSH tunnel is one address: 127.0.0.1); more are refused with HTTP 429; 0 disables"},
		&cli.DurationFlag{Name: "idle-timeout", EnvVars: []string{"RELAY_IDLE_TIMEOUT"},
			Usage: "close a client that sent no frame (pongs do not count) for this long, e.g. 24h; 0 (the default) never does: a healthy agent may listen for hours, and dead ones are dropped by the keepalive"},
	}
}

// loadTLS loads the certificate now, so a wrong path or a key that does
// not match fails at start, not at the first client.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("--tls-cert and --tls-key go together: give both PEM files (certificate and its private key)")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading --tls-cert %s / --tls-key %s: %v (both must be PEM, and the key must belong to the certificate)", certFile, keyFile, err)
	}
	// WebSocket upgrades need HTTP/1.1: h2 is not offered.
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}, nil
}

// tokenCommand is `relayd token`: make and hash per-identity tokens.
func tokenCommand(stdout io.Writer) *cli.Command {
	ids := &cli.StringFlag{Name: "ids", Required: true,
		Usage: "the client ids the token may claim: comma-separated globs, e.g. 'CC-*' or 'CC-1,BOT-?' (quote them from the shell)"}
	return &cli.Command{
		Name:  "token",
		Usage: "make per-identity tokens for --tokens-file",
		Subcommands: []*cli.Command{{
			Name:  "new",
			Usage: "print a fresh random token and the --tokens-file line that lets it claim --ids",
			Description: `The token is printed once and kept nowhere: hand it to the client (RELAY_TOKEN or
relay-mcp --token-file) and add the line to the relay's --tokens-file, then restart relayd.

Example:
   relayd token new --ids 'CC-*'`,
			Flags: []cli.Flag{ids},
			Action: func(c *cli.Context) error {
				globs, err := auth.ParseGlobs(c.String("ids"))
				if err != nil {
					return cli.Exit("--ids: "+err.Error(), 2)
				}
				tok, err := auth.NewToken()
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				fmt.Fprintf(stdout, "# token for the client (RELAY_TOKEN, or a --token-file); shown only now:\n%s\n", tok)
				fmt.Fprintf(stdout, "# line for the relay's --tokens-file (holds only the token's SHA-256):\n%s\n", auth.Line(tok, globs))
				return nil
			},
		}, {
			Name:  "hash",
			Usage: "read a token on stdin and print its --tokens-file line (for a token you already have)",
			Description: `Example:
   relayd token hash --ids CC-2 < ~/.config/claude-relay/token >> ~/.config/claude-relay/tokens`,
			Flags: []cli.Flag{ids},
			Action: func(c *cli.Context) error {
				globs, err := auth.ParseGlobs(c.String("ids"))
				if err != nil {
					return cli.Exit("--ids: "+err.Error(), 2)
				}
				b, err := io.ReadAll(io.LimitReader(os.Stdin, 4096))
				if err != nil {
					return cli.Exit("reading the token from stdin: "+err.Error(), 1)
				}
				tok := strings.TrimSpace(string(b))
				if tok == "" {
					return cli.Exit("no token on stdin; pipe one in, or make one with `relayd token new`", 2)
				}
				fmt.Fprintln(stdout, auth.Line(tok, globs))
				return nil
			},
		}},
	}
}
