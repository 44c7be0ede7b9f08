package cli

import (
	"os"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/buildinfo"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/doctor"
	ucli "github.com/urfave/cli/v2"
)

func doctorCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "doctor",
		Usage: "check, in order, everything a session needs and print the fix for what is wrong",
		Description: `Checks, each OK or FAIL with the fix: this relay-mcp and the relay's
version and protocol; the relay reachable (TCP, then the WebSocket upgrade,
then hello/welcome); the token; the SSH tunnel when RELAY_URL is loopback
and no relayd runs here; the session registry; the inbox directory; the clock
against the relay's; then which agents start relay-mcp (and whether
the command they run exists) and whether its Claude Code hooks are
installed. It uses the same settings (RELAY_URL, RELAY_TOKEN,
RELAY_TOKEN_FILE, RELAY_CA_FILE, RELAY_HOME) and the same id as a session
started here, and says hello without taking the id over, so a running
session stays online. It changes no file. Exit 1 if any check fails.

Examples:
   relay-mcp doctor
   RELAY_URL=ws://127.0.0.1:9999 RELAY_TOKEN_FILE=~/.config/claude-relay/token relay-mcp doctor
   CLAUDE_RELAY_SESSION_ID=CC-1 relay-mcp doctor      # as that session (per-identity tokens)`,
		Flags: []ucli.Flag{timeoutFlag()},
		Action: func(c *ucli.Context) error {
			cfg, err := loadCLIConfig(c, s)
			if err != nil {
				return err
			}
			if cfg.closer != nil {
				defer cfg.closer.Close()
			}
			host, _ := os.Hostname()
			id := CLIID(host)
			if os.Getenv(EnvSessionID) != "" || c.String("client-id") != "" {
				if id, err = sessionID(c); err != nil {
					return err
				}
			}
			src := "RELAY_TOKEN"
			if tf := c.String("token-file"); tf != "" {
				src = "--token-file " + tf
			} else if c.IsSet("token") && os.Getenv("RELAY_TOKEN") == "" {
				src = "--token"
			}
			fails := doctor.Run(c.Context, doctor.Config{
				URL: cfg.url, Token: cfg.token, TokenSource: src, TLS: cfg.tls, Home: cfg.home,
				ID: id, Host: host, Timeout: c.Duration("timeout"),
				Version: buildinfo.Get().String("relay-mcp", protocol.Version),
			}, s.Stdout)
			if fails > 0 {
				return exitf(ExitError, "doctor: %d check(s) failed; see the fix under each FAIL", fails)
			}
			return nil
		},
	}
}
