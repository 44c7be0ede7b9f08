package scriptedapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// stand is what every stand-in shares: a loopback HTTP server, and per
// session (the first path segment before the API's own path) the requests
// received, in order, and the script that answers them. R is the API's
// recorded request type.
type stand[R any] struct {
	srv *http.Server
	ln  net.Listener

	mu       sync.Mutex
	sessions map[string]*standSession[R]
	changed  chan struct{} // closed at every recorded request
}

type standSession[R any] struct {
	script   func(*R) Reply
	requests []*R
}

// start listens on a loopback port and serves h.
func (s *stand[R]) start(h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.ln, s.sessions, s.changed = ln, map[string]*standSession[R]{}, make(chan struct{})
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return nil
}

// Close stops the server.
func (s *stand[R]) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// root is http://127.0.0.1:PORT, then /sess for a session.
func (s *stand[R]) root(sess string) string {
	u := "http://" + s.ln.Addr().String()
	if sess != "" {
		u += "/" + sess
	}
	return u
}

// splitPath cuts a request path at the API's own part, which starts with
// marker ("/v1/", "/v1beta/"): /CODEX/v1/responses → CODEX, /v1/responses.
func splitPath(path, marker string) (sess, rest string) {
	if i := strings.Index(path, marker); i > 0 {
		return strings.Trim(path[:i], "/"), path[i:]
	}
	return "", path
}

func (s *stand[R]) sess(name string) *standSession[R] {
	ss := s.sessions[name]
	if ss == nil {
		ss = &standSession[R]{}
		s.sessions[name] = ss
	}
	return ss
}

// Script sets how a session's model answers. Sessions without a script
// answer "ok" and end the turn.
func (s *stand[R]) Script(sess string, fn func(*R) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sess(sess).script = fn
}

// record keeps r as the session's next request and returns the reply its
// script gives.
func (s *stand[R]) record(sess string, r *R) Reply {
	s.mu.Lock()
	ss := s.sess(sess)
	ss.requests = append(ss.requests, r)
	script := ss.script
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if script == nil {
		return Reply{Text: "ok"}
	}
	return script(r)
}

// Requests returns the model requests a session sent so far.
func (s *stand[R]) Requests(sess string) []*R {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[sess]
	if ss == nil {
		return nil
	}
	return append([]*R(nil), ss.requests...)
}

// WaitRequest waits until the session has sent more than n model requests
// and returns request n (0-based).
func (s *stand[R]) WaitRequest(ctx context.Context, sess string, n int) (*R, error) {
	for {
		s.mu.Lock()
		ch := s.changed
		var r *R
		if ss := s.sessions[sess]; ss != nil && len(ss.requests) > n {
			r = ss.requests[n]
		}
		s.mu.Unlock()
		if r != nil {
			return r, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("session %s sent %d request(s), waited for request %d: %w", sess, len(s.Requests(sess)), n+1, ctx.Err())
		}
	}
}

// take decodes raw into body (a field of req), records req as the
// session's next request and waits out its reply's Delay. false: the body
// was refused with 400, or the client went away during the delay.
func (s *stand[R]) take(w http.ResponseWriter, r *http.Request, sess string, req *R, raw []byte, body any) (Reply, bool) {
	if err := json.Unmarshal(raw, body); err != nil {
		http.Error(w, "bad request body: "+err.Error(), http.StatusBadRequest)
		return Reply{}, false
	}
	rep := s.record(sess, req)
	return rep, hold(r, rep)
}

// hold waits out a reply's Delay; false if the client went away first.
func hold(r *http.Request, rep Reply) bool {
	if rep.Delay <= 0 {
		return true
	}
	select {
	case <-time.After(rep.Delay):
		return true
	case <-r.Context().Done():
		return false
	}
}

// sseEvent writes one server-sent event; name "" writes a data line only.
func sseEvent(w http.ResponseWriter, name string, data []byte) {
	if name != "" {
		fmt.Fprintf(w, "event: %s\n", name)
	}
	fmt.Fprintf(w, "data: %s\n\n", data)
}
