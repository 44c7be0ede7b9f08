package doctor

import (
	"bytes"
	"net"
	"os"
	"strings"
	"testing"
)

func TestFindTunnelAndRelayd(t *testing.T) {
	ps := []process{
		{pid: 10, args: []string{"/usr/bin/ssh", "-N", "-L", "7777:127.0.0.1:9999", "me@box"}},
		{pid: 11, args: []string{"ssh", "-N", "-L127.0.0.1:9999:127.0.0.1:9999", "-o", "ServerAliveInterval=30", "me@relay"}},
		{pid: 12, args: []string{"/opt/homebrew/bin/relayd", "version"}},
		{pid: 13, args: []string{"/usr/local/bin/relayd", "--listen", "127.0.0.1:9999"}},
	}
	if p, ok := findTunnel(ps, "9999"); !ok || p.pid != 11 {
		t.Fatalf("tunnel for 9999: %v %v", p, ok)
	}
	if p, ok := findTunnel(ps, "7777"); !ok || p.pid != 10 {
		t.Fatalf("tunnel for 7777: %v %v", p, ok)
	}
	if _, ok := findTunnel(ps, "8888"); ok {
		t.Fatal("tunnel for 8888")
	}
	if p, ok := findRelayd(ps); !ok || p.pid != 13 {
		t.Fatalf("relayd: %v %v (relayd version is not a server)", p, ok)
	}
}

// A tunnel process whose far end does not answer: the user is told which
// process and what to restart.
func TestTunnelBroken(t *testing.T) {
	ps := []process{{pid: 4242, args: []string{"ssh", "-N", "-L", "9999:127.0.0.1:9999", "me@relay-host"}}}
	var b bytes.Buffer
	r := &report{w: &b}
	tunnelCheck(Config{}, true, "9999", ps, false, r)
	out := b.String()
	if r.fails != 1 || !strings.Contains(out, "FAIL  SSH tunnel: pid 4242 (ssh -N -L 9999:127.0.0.1:9999 me@relay-host) should forward port 9999, but the relay did not answer through it") || !strings.Contains(out, "ssh me@relay-host curl -s http://127.0.0.1:9999/healthz") {
		t.Fatalf("%d:\n%s", r.fails, out)
	}
	b.Reset()
	tunnelCheck(Config{}, true, "9999", ps, true, r)
	if !strings.Contains(b.String(), "OK    SSH tunnel: pid 4242 (ssh -N -L 9999:127.0.0.1:9999 me@relay-host) carries port 9999") {
		t.Fatal(b.String())
	}
}

// listener finds this test process listening on a port (Linux only).
func TestListener(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp on this system")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p, ok := listener(processes(), port)
	if !ok || p.pid != os.Getpid() {
		t.Fatalf("listener of %s: %v %v, want pid %d", port, p, ok, os.Getpid())
	}
}
