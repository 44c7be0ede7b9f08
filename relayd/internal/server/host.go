package server

import (
	"fmt"
	"net"
	"net/http"
	"path"
	"strings"

	"github.com/claude-relay/claude-relay/relayd/internal/auth"
)

// DNS rebinding: a web page at http://evil.example:9999 makes its own name
// resolve to 127.0.0.1, and its "same-origin" requests then reach a relay
// on this machine. The browser sends Origin http://evil.example:9999 and
// Host evil.example:9999, so the Origin check (which accepts an Origin
// equal to Host) lets the page in. A relay that asks for no token is the
// one at risk, so that relay answers only requests addressed to it by a
// loopback name or an IP address (a rebinding page always uses a DNS name:
// its origin is the attacker's site), or by a name listed in AllowHosts.
// With a token the check is not needed: a page cannot present the token.

// hostAllowed reports whether a request's Host may be served.
func (s *Server) hostAllowed(r *http.Request) bool {
	if s.authEnabled() {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" || net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true // "" is HTTP/1.0 without Host: no browser sends that
	}
	for _, p := range s.AllowHosts {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

func (s *Server) authEnabled() bool { return auth.NewAuthenticator(s.Token, s.Tokens).Enabled() }

// checkHost wraps h with the Host check.
func (s *Server) checkHost(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r) {
			s.Logger.Warn("request refused: unknown Host on a relay without a token (DNS rebinding?)", "remote", r.RemoteAddr, "host", r.Host, "origin", r.Header.Get("Origin"), "path", r.URL.Path)
			http.Error(w, fmt.Sprintf("403 forbidden: this relay has no token and answers only to 127.0.0.1, localhost or an IP address, not to %q "+
				"(a web page may be trying to reach it by DNS rebinding); if that name is really this relay's, start relayd with --allow-host %s or give it a token",
				r.Host, hostOnly(r.Host)), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
