package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/claude-relay/claude-relay/internal/buildinfo"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/autostart"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/doctor"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/proc"
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
				URL: cfg.url, URLs: cfg.urls, Token: cfg.token, TokenSource: src, TLS: cfg.tls, Home: cfg.home,
				ID: id, Host: host, Timeout: c.Duration("timeout"), Notes: []doctor.Note{autostartNote(cfg)},
				Version: buildinfo.Get().String("relay-mcp", protocol.Version),
			}, s.Stdout)
			if fails > 0 {
				return exitf(ExitError, "doctor: %d check(s) failed; see the fix under each FAIL", fails)
			}
			return nil
		},
	}
}

// autostartNote says whether relay-mcp starts relayd here, which one, and
// where its log goes.
func autostartNote(cfg *config) doctor.Note {
	addr := autostart.LoopbackAddr(cfg.url)
	switch {
	case len(cfg.urls) > 1:
		return doctor.Note{Status: doctor.OK, What: "autostart: not for a list of relays (a cluster's nodes): relay-mcp never starts a relayd of its own beside them"}
	case !cfg.autostart:
		return doctor.Note{Status: doctor.OK, What: "autostart: off (--autostart / " + autostart.Env + "): relay-mcp never starts relayd"}
	case addr == "":
		return doctor.Note{Status: doctor.OK, What: "autostart: not for " + cfg.url + " (relay-mcp starts relayd only for a ws:// URL on loopback)"}
	}
	bin, err := autostart.Find()
	if err != nil {
		return doctor.Note{Status: doctor.Warn, What: "autostart: on, but there is " + strings.SplitN(err.Error(), ":", 2)[0], Fix: err.Error()}
	}
	what := fmt.Sprintf("autostart: on — when nothing listens on %s, relay-mcp starts %s (store %s, log %s)", addr, bin, filepath.Join(cfg.home, "data"), autostart.LogPath(cfg.home))
	if b, err := os.ReadFile(autostart.PIDPath(cfg.home)); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 && proc.Alive(pid) {
			what += fmt.Sprintf("; the one it started runs as pid %d", pid)
		}
	}
	return doctor.Note{Status: doctor.OK, What: what}
}
