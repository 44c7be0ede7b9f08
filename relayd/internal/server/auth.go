package server

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/auth"
)

// identify returns what the request's token allows. With no token
// configured everyone may claim any id. The query parameter is accepted only
// where allowQuery is set: older clients cannot send headers on /. Tokens
// are compared as SHA-256 digests in constant time (package auth), so
// neither their content nor their length leaks through timing; they are
// never logged.
func (s *Server) identify(r *http.Request, allowQuery bool) (auth.Identity, bool) {
	a := auth.NewAuthenticator(s.Token, s.Tokens)
	if !a.Enabled() {
		return auth.Anyone, true
	}
	return a.Check(presentedToken(r, allowQuery))
}

// presentedToken is the token r carries, or "".
func presentedToken(r *http.Request, allowQuery bool) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			if tok = strings.TrimSpace(tok); tok != "" {
				return tok
			}
		}
	}
	if allowQuery {
		return r.URL.Query().Get("token")
	}
	return ""
}

// authenticate answers a request that carries no acceptable token (401)
// and returns the identity of one that does. Failed attempts are counted
// per remote address (AuthFailLimit); once an address has used them up,
// its requests are refused with 429 before their token is even looked at,
// so guessing goes no faster than the limit, right guesses included.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, allowQuery bool) (auth.Identity, bool) {
	if !s.authEnabled() {
		return auth.Anyone, true
	}
	addr := hostOnly(r.RemoteAddr)
	now := time.Now()
	if wait := s.authFails.Wait(addr, now); wait > 0 {
		s.Logger.Debug("request refused: too many failed tokens", "remote", r.RemoteAddr)
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		http.Error(w, fmt.Sprintf("429 too many requests with a wrong token from %s (the relay's --auth-fail-limit is %s); wait %d s and check RELAY_TOKEN / --token-file",
			addr, s.AuthFailLimit, secs), http.StatusTooManyRequests)
		return auth.Identity{}, false
	}
	id, ok := s.identify(r, allowQuery)
	if !ok {
		// Only a wrong token is a guess; a request without one (a client
		// or dashboard not yet configured) does not use up the limit.
		if presentedToken(r, allowQuery) != "" {
			s.authFails.Allow(addr, now)
		}
		s.Logger.Info("request refused: missing or wrong token", "remote", r.RemoteAddr, "path", r.URL.Path)
		unauthorized(w)
		return auth.Identity{}, false
	}
	return id, true
}

type identityKey struct{}

// withIdentity remembers id on r for the hello check in serveWS.
func withIdentity(r *http.Request, id auth.Identity) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
}

// mayClaim checks the hello's client id against the identity the upgrade
// was authenticated with. A refused id gets a forbidden error frame and
// close 4503, which tells clients not to reconnect: retrying cannot help
// until someone changes the token or the id.
func (s *Server) mayClaim(ctx context.Context, ws *websocket.Conn, codec Codec, r *http.Request, hello *protocol.Hello, log *slog.Logger) bool {
	id, ok := r.Context().Value(identityKey{}).(auth.Identity)
	if !ok {
		id = auth.Anyone // Handler always sets it; tests of serveWS alone may not
	}
	if id.May(hello.ClientID) {
		if id.Name != auth.Anyone.Name {
			// Which credential a session used, for an audit trail; never the token.
			log.Info("client authenticated", "client", hello.ClientID, "credential", id.Name)
		}
		return true
	}
	log.Warn("client id refused: its token may not claim it", "client", hello.ClientID, "credential", id.Name, "may_claim", id.Globs())
	msg := fmt.Sprintf("this token may claim only %s (%s on the relay), not %s — connect with one of those ids, or ask the relay's operator to add %s to the token's line in the tokens file",
		id.Globs(), id.Name, hello.ClientID, hello.ClientID)
	s.write(ctx, ws, codec, &protocol.ErrorFrame{Code: protocol.CodeForbidden, Message: msg}, "")
	ws.Close(protocol.CloseForbiddenID, truncateReason("token may not claim client id "+hello.ClientID))
	return false
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="claude-relay"`)
	http.Error(w, "401 unauthorized: this relay needs its token — set RELAY_TOKEN (or --token-file) on the client to the relay's token", http.StatusUnauthorized)
}
