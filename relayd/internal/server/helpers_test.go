package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/legacy"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// relay is a real relay server on a loopback port.
type relay struct {
	t   *testing.T
	srv *Server
	hts *httptest.Server
	url string // ws://127.0.0.1:PORT
}

// startRelay starts a relay with the default store (SQLite in a temporary
// directory), as relayd runs; opt may adjust the server
// before it starts. It is shut down, and checked for leaked goroutines, when
// the test ends.
func startRelay(t *testing.T, opt ...func(*Server, *hub.Options)) *relay {
	t.Helper()
	return startRelayWrapped(t, nil, opt...)
}

// startRelayWrapped is startRelay with the relay's handler wrapped by wrap
// (when not nil), for tests that watch the HTTP answers themselves.
func startRelayWrapped(t *testing.T, wrap func(http.Handler) http.Handler, opt ...func(*Server, *hub.Options)) *relay {
	t.Helper()
	base := runtime.NumGoroutine()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sq, err := store.Open(context.Background(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hopts := hub.Options{Store: sq, Logger: log, Server: "relayd test"}
	srv := &Server{Logger: log, Version: "test", Legacy: func() Codec { return legacy.New(protocol.Limits{}) }}
	for _, o := range opt {
		o(srv, &hopts)
	}
	srv.Hub = hub.New(hopts)
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	hts := httptest.NewServer(h)
	r := &relay{t: t, srv: srv, hts: hts, url: "ws" + strings.TrimPrefix(hts.URL, "http")}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hts.Close()
		sq.Close()
		checkGoroutines(t, base)
	})
	return r
}

// checkGoroutines fails the test if goroutines started during it are still
// running a moment after teardown.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutine leak: %d running, %d before the test\n%s", n, base, buf)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// client is a protocol v1 client for tests.
type client struct {
	t  *testing.T
	ws *websocket.Conn
	id string
}

// dialRaw opens a WebSocket to path without saying hello.
// patience bounds how long a test waits for the relay. It is generous: a
// passing test never waits it out, and the race detector on a loaded
// 2-core machine can be many times slower than usual.
const patience = 15 * time.Second

func (r *relay) dialRaw(path string, header http.Header) *client {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, r.url+path, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		r.t.Fatalf("dial %s: %v", path, err)
	}
	ws.SetReadLimit(8 << 20)
	c := &client{t: r.t, ws: ws}
	r.t.Cleanup(func() { ws.CloseNow() })
	return c
}

// connect says hello as id and returns the client and its welcome.
func (r *relay) connect(id string, resumeAfter uint64) (*client, *protocol.Welcome) {
	r.t.Helper()
	c := r.dialRaw("/v1/ws", nil)
	c.id = id
	c.send(&protocol.Hello{Proto: protocol.Version, ClientID: id, Host: "test-host", PID: 100, Agent: "test", ResumeAfter: resumeAfter})
	return c, expect[*protocol.Welcome](c)
}

func (c *client) send(f protocol.Frame) {
	c.t.Helper()
	b, err := protocol.Encode(f)
	if err != nil {
		c.t.Fatal(err)
	}
	c.writeText(string(b))
}

func (c *client) writeText(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("%s: write: %v", c.id, err)
	}
}

// next reads the next frame, failing the test after patience.
func (c *client) next() protocol.Frame {
	c.t.Helper()
	f, err := c.read(patience)
	if err != nil {
		c.t.Fatalf("%s: read: %v", c.id, err)
	}
	return f
}

func (c *client) read(timeout time.Duration) (protocol.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	return protocol.Decode(b)
}

// expect reads frames, skipping presence, until one of type T arrives.
func expect[T protocol.Frame](c *client) T {
	c.t.Helper()
	for {
		f := c.next()
		if v, ok := f.(T); ok {
			return v
		}
		if _, ok := f.(*protocol.Presence); ok {
			continue
		}
		var zero T
		c.t.Fatalf("%s: got %T %+v, want %T", c.id, f, f, zero)
	}
}

// closeStatus waits for the relay to close the connection and returns the
// close code and reason.
func (c *client) closeStatus() (websocket.StatusCode, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.ws.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if ok := asCloseError(err, &ce); ok {
			return ce.Code, ce.Reason
		}
		c.t.Fatalf("%s: connection ended without a close frame: %v", c.id, err)
	}
}

func asCloseError(err error, ce *websocket.CloseError) bool {
	code := websocket.CloseStatus(err)
	if code == -1 {
		return false
	}
	ce.Code = code
	ce.Reason = err.Error()
	if i := strings.Index(ce.Reason, "reason = "); i >= 0 {
		ce.Reason = ce.Reason[i+len("reason = "):]
	}
	return true
}

// legacyClient speaks the older Node relay protocol on /.
type legacyClient struct {
	*client
}

func (r *relay) connectLegacy(id, query string) *legacyClient {
	r.t.Helper()
	c := r.dialRaw("/"+query, nil)
	c.id = id
	lc := &legacyClient{c}
	lc.writeJSON(map[string]any{"type": "register", "clientId": id, "meta": map[string]any{"host": "old-box", "cwd": "/src", "pid": 7}})
	if got := lc.nextJSON(); got["type"] != "registered" {
		r.t.Fatalf("legacy %s: got %v, want registered", id, got)
	}
	return lc
}

func (c *legacyClient) writeJSON(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.writeText(string(b))
}

func (c *legacyClient) nextJSON() map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("legacy %s: read: %v", c.id, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("legacy %s: %s is not JSON: %v", c.id, b, err)
	}
	return m
}

// nextOfType reads until a frame of type typ arrives, skipping presence.
func (c *legacyClient) nextOfType(typ string) map[string]any {
	c.t.Helper()
	for {
		m := c.nextJSON()
		if m["type"] == typ {
			return m
		}
		if m["type"] == "peer_joined" || m["type"] == "peer_left" {
			continue
		}
		c.t.Fatalf("legacy %s: got %v, want type %s", c.id, m, typ)
	}
}

// waitFor polls cond until it holds, failing the test after 2×patience.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 2*patience, what, cond)
}
