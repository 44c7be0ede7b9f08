package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/relayd/internal/hub"
)

// rebindRequest sends what a browser sends once a page's name resolves to
// the relay (DNS rebinding): Host and Origin both the page's name, with
// the relay's port. upgrade asks for a WebSocket on path.
func rebindRequest(t *testing.T, r *relay, name, path string, upgrade bool, extra string) (int, string) {
	t.Helper()
	addr := strings.TrimPrefix(r.url, "ws://")
	_, port, _ := net.SplitHostPort(addr)
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	host := name + ":" + port
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nOrigin: http://%s\r\n%s", path, host, host, extra)
	if upgrade {
		req += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	}
	fmt.Fprint(conn, req+"\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s as %s: %v", "GET", path, host, err)
	}
	defer resp.Body.Close()
	var body []byte
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ = io.ReadAll(resp.Body)
	}
	return resp.StatusCode, string(body)
}

// A page that rebinds its name to 127.0.0.1 sends an Origin equal to Host,
// which the Origin check alone lets through. A relay without a token
// refuses any Host that is not loopback or an IP address — on the sockets,
// the dashboard's data and the rest — unless --allow-host lists it.
func TestDNSRebindingRefused(t *testing.T) {
	r := startRelay(t)
	for _, path := range []string{"/v1/ws", "/"} {
		code, body := rebindRequest(t, r, "evil.example", path, true, "")
		if code != http.StatusForbidden || !strings.Contains(body, "DNS rebinding") || !strings.Contains(body, "--allow-host evil.example") {
			t.Errorf("rebinding upgrade of %s: %d %q, want 403 naming --allow-host", path, code, body)
		}
	}
	for _, path := range []string{"/dashboard.json", "/", "/healthz"} {
		if code, _ := rebindRequest(t, r, "evil.example", path, false, ""); code != http.StatusForbidden {
			t.Errorf("GET %s as evil.example: %d, want 403", path, code)
		}
	}
	// The relay's own names still work, Origin equal to Host included.
	for _, name := range []string{"127.0.0.1", "localhost", "LOCALHOST", "relay.localhost", "[::1]", "192.0.2.7"} {
		if code, body := rebindRequest(t, r, name, "/v1/ws", true, ""); code != http.StatusSwitchingProtocols {
			t.Errorf("upgrade as %s: %d %q, want 101", name, code, body)
		}
	}

	t.Run("allow-host", func(t *testing.T) {
		r := startRelay(t, func(s *Server, _ *hub.Options) { s.AllowHosts = []string{"*.lan"} })
		if code, body := rebindRequest(t, r, "relay.lan", "/v1/ws", true, ""); code != http.StatusSwitchingProtocols {
			t.Errorf("allowed host: %d %q", code, body)
		}
		if code, _ := rebindRequest(t, r, "relay.lan.evil.example", "/v1/ws", true, ""); code != http.StatusForbidden {
			t.Errorf("a name ending elsewhere: %d, want 403", code)
		}
	})
	t.Run("with a token", func(t *testing.T) {
		// The token is what keeps pages out; any name works for its holder.
		r := startRelay(t, func(s *Server, _ *hub.Options) { s.Token = "tok" })
		if code, _ := rebindRequest(t, r, "relay.example.com", "/v1/ws", true, ""); code != http.StatusUnauthorized {
			t.Errorf("no token: %d, want 401", code)
		}
		if code, _ := rebindRequest(t, r, "relay.example.com", "/v1/ws", true, "Authorization: Bearer tok\r\n"); code != http.StatusSwitchingProtocols {
			t.Errorf("with the token: %d, want 101", code)
		}
	})
}

// Pages without an origin of their own (sandboxed frames, file:// pages)
// send "Origin: null" and are refused like any foreign page.
func TestNullOriginRefused(t *testing.T) {
	r := startRelay(t)
	if code, _ := rebindRequest(t, r, "127.0.0.1", "/v1/ws", true, ""); code != http.StatusSwitchingProtocols {
		t.Fatalf("control: the relay's own origin answered %d", code)
	}
	for _, origin := range []string{"null", "file://"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, resp, err := websocket.Dial(ctx, r.url+"/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		cancel()
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %s: err=%v resp=%v, want 403", origin, err, resp)
		}
	}
}
