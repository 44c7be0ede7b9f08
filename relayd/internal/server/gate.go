package server

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// gate counts open WebSocket connections, in all and per remote address,
// so that one machine (or everyone together) cannot exhaust the relay's
// file descriptors and memory. Refusals happen before the upgrade, as plain
// HTTP answers a client can show: 503 when the relay is full, 429 when one
// address holds too many.
//
// A connection that has not said hello yet is pending. Sockets that never
// say hello would otherwise hold the slots of their address until the
// hello timeout, and a loop opening them would lock every real client of
// that address out: when an address (or the relay) is full, a new
// connection takes the slot of the oldest pending one that has sent
// nothing at all in half the hello timeout (5 s by default) since its
// upgrade, and that one is closed. A real client
// sends its hello as soon as the upgrade is answered, so it is never the
// one closed, even when a busy relay is slow to read it. (A socket that
// trickles a partial hello keeps its slot until the hello timeout.)
//
// All loopback addresses (127.0.0.0/8, ::1) are one address: they are all
// this machine, and 127.0.0.2 and up must not be 254 more allowances.
type gate struct {
	mu      sync.Mutex
	total   int
	byAddr  map[string]int
	pending map[string][]*slot // by address, oldest first
}

// slot is one admitted connection.
type slot struct {
	g        *gate
	key      string
	since    time.Time
	pending  bool // no hello yet
	released bool
	evicted  bool
	cancel   func()      // ends the connection's handler
	heard    func() bool // the client has sent something since the upgrade
}

// addrKey is the address a connection counts against: its IP, or
// "loopback" for any loopback IP.
func addrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return "loopback"
	}
	return host
}

// admit takes a connection slot for r, or answers the request and returns
// false. The slot is pending until Hello; Release gives it back.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (*slot, bool) {
	if s.MaxConns <= 0 && s.MaxConnsPerAddr <= 0 {
		return nil, true
	}
	key := addrKey(r.RemoteAddr)
	g := &s.gate
	now := time.Now()
	g.mu.Lock()
	if s.MaxConns > 0 && g.total >= s.MaxConns {
		if v := g.oldestPending("", now.Add(-s.HelloTimeout/2)); v != nil {
			g.evictLocked(v)
		} else {
			g.mu.Unlock()
			s.Logger.Warn("connection refused: relay full", "remote", r.RemoteAddr, "max_conns", s.MaxConns)
			w.Header().Set("Retry-After", "5")
			http.Error(w, fmt.Sprintf("503 relay full: it holds its limit of %d connections (relayd --max-conns); try again later, or ask its operator to raise the limit", s.MaxConns), http.StatusServiceUnavailable)
			return nil, false
		}
	}
	if s.MaxConnsPerAddr > 0 && g.byAddr[key] >= s.MaxConnsPerAddr {
		if v := g.oldestPending(key, now.Add(-s.HelloTimeout/2)); v != nil {
			g.evictLocked(v)
		} else {
			g.mu.Unlock()
			s.Logger.Warn("connection refused: too many from one address", "remote", r.RemoteAddr, "max_conns_per_addr", s.MaxConnsPerAddr)
			w.Header().Set("Retry-After", "5")
			http.Error(w, fmt.Sprintf("429 too many connections from %s: the limit is %d (relayd --max-conns-per-addr); close some sessions, or ask the relay's operator to raise it", key, s.MaxConnsPerAddr), http.StatusTooManyRequests)
			return nil, false
		}
	}
	if g.byAddr == nil {
		g.byAddr, g.pending = map[string]int{}, map[string][]*slot{}
	}
	g.total++
	g.byAddr[key]++
	sl := &slot{g: g, key: key, since: now, pending: true}
	g.pending[key] = append(g.pending[key], sl)
	g.mu.Unlock()
	return sl, true
}

// oldestPending is the oldest pending slot of key ("" for any address)
// upgraded before `before` whose client has sent nothing, or nil.
func (g *gate) oldestPending(key string, before time.Time) *slot {
	var v *slot
	for k, ps := range g.pending {
		if key != "" && k != key {
			continue
		}
		for _, p := range ps { // oldest first
			if !p.since.Before(before) {
				break
			}
			if p.heard != nil && p.heard() {
				continue
			}
			if v == nil || p.since.Before(v.since) {
				v = p
			}
			break
		}
	}
	return v
}

// evictLocked gives v's slot up and ends its connection.
func (g *gate) evictLocked(v *slot) {
	g.releaseLocked(v)
	v.evicted = true
	if v.cancel != nil {
		v.cancel()
	}
}

func (g *gate) releaseLocked(v *slot) {
	if v.released {
		return
	}
	v.released = true
	g.total--
	if g.byAddr[v.key]--; g.byAddr[v.key] <= 0 {
		delete(g.byAddr, v.key)
	}
	g.unpendLocked(v)
}

func (g *gate) unpendLocked(v *slot) {
	if !v.pending {
		return
	}
	v.pending = false
	ps := g.pending[v.key]
	for i, p := range ps {
		if p == v {
			ps = append(ps[:i], ps[i+1:]...)
			break
		}
	}
	if len(ps) == 0 {
		delete(g.pending, v.key)
	} else {
		g.pending[v.key] = ps
	}
}

// OnEvict sets what ends the connection if a newer one takes its slot
// before it says hello (at once, if that happened already), and what
// tells whether the client has sent anything.
func (v *slot) OnEvict(cancel func(), heard func() bool) {
	if v == nil {
		return
	}
	v.g.mu.Lock()
	evicted := v.evicted
	v.cancel, v.heard = cancel, heard
	v.since = time.Now() // upgraded: from now on the client may talk
	v.g.mu.Unlock()
	if evicted {
		cancel()
	}
}

// Hello marks the connection established: its slot can no longer be
// taken. False means it was taken just before: the connection must end.
func (v *slot) Hello() bool {
	if v == nil {
		return true
	}
	v.g.mu.Lock()
	defer v.g.mu.Unlock()
	v.g.unpendLocked(v)
	return !v.evicted
}

// Release gives the slot back (once; after an eviction, not at all).
func (v *slot) Release() {
	if v == nil {
		return
	}
	v.g.mu.Lock()
	v.g.releaseLocked(v)
	v.g.mu.Unlock()
}
