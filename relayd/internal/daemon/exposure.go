package daemon

import (
	"fmt"
	"log/slog"
	"net"
)

// minTokenLen: shorter shared tokens get a warning beyond loopback.
const minTokenLen = 20

// CheckExposure refuses to listen beyond loopback without a credential
// unless Insecure, and warns of the weaker setups it allows.
func CheckExposure(cfg Config, log *slog.Logger) error {
	if cfg.MaxConns < 0 || cfg.MaxConnsPerAddr < 0 || cfg.IdleTimeout < 0 {
		return &ConfigError{"--max-conns, --max-conns-per-addr and --idle-timeout take 0 (no limit) or a positive value"}
	}
	addr := cfg.Listen
	if IsLoopback(addr) {
		return nil
	}
	authed := cfg.Token != "" || cfg.Tokens != nil
	switch {
	case !authed && !cfg.Insecure:
		return &ConfigError{fmt.Sprintf("refusing to listen on %s without a token: anyone who reaches it could send text into your agents.\n"+
			"Set RELAY_TOKEN or --token-file FILE (clients send it too) or --tokens-file FILE (per-identity tokens), "+
			"keep --listen on 127.0.0.1 and use an SSH tunnel, or pass --insecure to accept the risk", addr)}
	case !authed:
		log.Warn("listening beyond loopback WITHOUT a token (--insecure): anyone who reaches this port can message your agents", "addr", addr)
	case cfg.TLS == nil:
		log.Warn("listening beyond loopback without TLS: tokens and messages cross the network in clear text; add --tls-cert/--tls-key or use an SSH tunnel", "addr", addr)
	}
	// --auth-fail-limit slows guessing down; a long random token is what
	// makes it hopeless.
	if n := len(cfg.Token); n > 0 && n < minTokenLen {
		log.Warn(fmt.Sprintf("the shared token is only %d characters: someone who can reach the port could guess it; use %d or more random characters (relayd token new prints one)", n, minTokenLen), "addr", addr)
	}
	return nil
}

// IsLoopback reports whether addr (host:port) is on this machine only.
func IsLoopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
