package e2e

import (
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// slowProxy forwards loopback TCP connections to addr, each after delay: a
// relay whose connection takes a while to open (a slow network, a loaded
// machine).
func slowProxy(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	return proxy(t, addr, func(c, up net.Conn) {
		defer c.Close()
		defer up.Close()
		time.Sleep(delay) // the slowness is what is tested
		go io.Copy(up, c)
		io.Copy(c, up)
	})
}

// Connecting is not offline: a send made the moment relay-mcp is up (the
// go-sdk client calls as soon as the MCP handshake is done), while its
// first connection is still opening, waits for it and is delivered.
func TestFirstCallWaitsForConnection(t *testing.T) {
	r := relaytest.Start(t)
	peer := spawnAgent(t, r.URL(), "CC-2", t.TempDir())
	peer.waitState(t, "connected")
	slow := slowProxy(t, r.Addr, 700*time.Millisecond)
	for i := 0; i < 2; i++ {
		start := time.Now()
		cc := spawnAgent(t, slow, "CC-1", t.TempDir())
		spawned := time.Since(start)
		got := cc.text(t, "relay_send", map[string]any{"to": "CC-2", "message": "first words"})
		t.Logf("spawn+handshake %v, answered after %v: %s", spawned, time.Since(start), got)
		if !strings.Contains(got, "CC-2: delivered") {
			t.Fatalf("a send right after spawn was not delivered: %s", got)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("the first send took %v", took)
		}
		cc.cs.Close()
	}
}

// The status sentence of a session whose first connection is under way
// says so, and does not call the relay unreachable; a relay that is down is
// reported as such at once (the first attempt fails fast).
func TestStatusWhileRelayDown(t *testing.T) {
	cc := spawnAgent(t, "ws://127.0.0.1:1", "CC-1", t.TempDir())
	start := time.Now()
	got := cc.text(t, "relay_status", nil)
	if time.Since(start) > 2500*time.Millisecond {
		t.Fatalf("relay_status waited %v with the relay down", time.Since(start))
	}
	if !strings.Contains(got, "relay not reachable") && !strings.Contains(got, "still connecting") {
		t.Fatalf("status with the relay down: %s", got)
	}
}
