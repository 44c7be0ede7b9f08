package e2e

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// proxy listens on loopback and hands each connection it accepts, with a
// new connection to addr, to serve, which owns both. It returns the ws://
// URL of the listener, which closes at test cleanup. The fault proxies
// (faultProxy, cutProxy, slowProxy) are each a serve.
func proxy(t testing.TB, addr string, serve func(client, up net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			go serve(c, up)
		}
	}()
	return "ws://" + ln.Addr().String()
}

// pump copies src to dst, passing on what keep says to and dropping the
// rest, until reading src or writing dst fails.
func pump(dst, src net.Conn, keep func([]byte) bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && keep(buf[:n]) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// faultProxy forwards loopback TCP connections to a relay and can, on the
// connections open at the time, drop what the client sends (hold: the
// relay hears nothing more, acks included), drop what the relay sends
// (mute: a send reaches the relay, its accepted never comes back — not
// even bytes the relay wrote just before it died), or close them (cut).
// Connections made later are forwarded whole.
type faultProxy struct {
	url  string
	mu   sync.Mutex
	open []*proxied
}

type proxied struct {
	client, up net.Conn
	held       atomic.Bool // the client's bytes are dropped
	muted      atomic.Bool // the relay's bytes are dropped
}

func newFaultProxy(t *testing.T, addr string) *faultProxy {
	t.Helper()
	p := &faultProxy{}
	p.url = proxy(t, addr, func(c, up net.Conn) {
		pc := &proxied{client: c, up: up}
		p.mu.Lock()
		p.open = append(p.open, pc)
		p.mu.Unlock()
		go pc.copy(up, c, &pc.held)
		pc.copy(c, up, &pc.muted)
	})
	return p
}

// copy forwards from src to dst until either ends, dropping what it
// reads while drop is set.
func (pc *proxied) copy(dst, src net.Conn, drop *atomic.Bool) {
	defer pc.client.Close()
	defer pc.up.Close()
	pump(dst, src, func([]byte) bool { return !drop.Load() })
}

func (p *faultProxy) each(fn func(*proxied)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.open {
		fn(pc)
	}
}

func (p *faultProxy) hold() { p.each(func(pc *proxied) { pc.held.Store(true) }) }
func (p *faultProxy) mute() { p.each(func(pc *proxied) { pc.muted.Store(true) }) }

func (p *faultProxy) cut() {
	p.each(func(pc *proxied) {
		pc.client.Close()
		pc.up.Close()
	})
	p.mu.Lock()
	p.open = nil
	p.mu.Unlock()
}
