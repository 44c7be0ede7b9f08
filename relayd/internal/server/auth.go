package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// authorized reports whether r carries the relay's token. With no token
// configured every request is. The query parameter is accepted only where
// allowQuery is set: older clients cannot send headers on /. Tokens are
// compared as SHA-256 digests in constant time, so neither their content nor
// their length leaks through timing.
func (s *Server) authorized(r *http.Request, allowQuery bool) bool {
	if s.Token == "" {
		return true
	}
	got := ""
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			got = strings.TrimSpace(tok)
		}
	}
	if got == "" && allowQuery {
		got = r.URL.Query().Get("token")
	}
	if got == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(s.Token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="claude-relay"`)
	http.Error(w, "401 unauthorized: this relay needs its token — set RELAY_TOKEN (or --token-file) on the client to the relay's token", http.StatusUnauthorized)
}
