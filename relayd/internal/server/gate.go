package server

import (
	"fmt"
	"net"
	"net/http"
	"sync"
)

// gate counts open WebSocket connections, in all and per remote address,
// so that one machine (or everyone together) cannot exhaust the relay's
// file descriptors and memory. Refusals happen before the upgrade, as plain
// HTTP answers a client can show: 503 when the relay is full, 429 when one
// address holds too many.
type gate struct {
	mu     sync.Mutex
	total  int
	byAddr map[string]int
}

// admit takes a connection slot for r, or answers the request and returns
// false. release gives the slot back.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	if s.MaxConns <= 0 && s.MaxConnsPerAddr <= 0 {
		return func() {}, true
	}
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	g := &s.gate
	g.mu.Lock()
	if s.MaxConns > 0 && g.total >= s.MaxConns {
		g.mu.Unlock()
		s.Logger.Warn("connection refused: relay full", "remote", r.RemoteAddr, "max_conns", s.MaxConns)
		w.Header().Set("Retry-After", "5")
		http.Error(w, fmt.Sprintf("503 relay full: it holds its limit of %d connections (relayd --max-conns); try again later, or ask its operator to raise the limit", s.MaxConns), http.StatusServiceUnavailable)
		return nil, false
	}
	if s.MaxConnsPerAddr > 0 && g.byAddr[addr] >= s.MaxConnsPerAddr {
		g.mu.Unlock()
		s.Logger.Warn("connection refused: too many from one address", "remote", r.RemoteAddr, "max_conns_per_addr", s.MaxConnsPerAddr)
		w.Header().Set("Retry-After", "5")
		http.Error(w, fmt.Sprintf("429 too many connections from %s: the limit is %d (relayd --max-conns-per-addr); close some sessions, or ask the relay's operator to raise it", addr, s.MaxConnsPerAddr), http.StatusTooManyRequests)
		return nil, false
	}
	if g.byAddr == nil {
		g.byAddr = map[string]int{}
	}
	g.total++
	g.byAddr[addr]++
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.total--
			if g.byAddr[addr]--; g.byAddr[addr] <= 0 {
				delete(g.byAddr, addr)
			}
		})
	}, true
}
