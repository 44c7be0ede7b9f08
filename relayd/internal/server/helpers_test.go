package server

import (
	"context"
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
	"github.com/claude-relay/claude-relay/relayd/internal/wstest"
)

// relay is a real relay server on a loopback port.
type relay struct {
	t   *testing.T
	srv *Server
	hts *httptest.Server
	url string // ws://127.0.0.1:PORT
	dir string // the durable store's directory
}

// durableStores are the stores relayd serves from (--store auto): the
// journal, which a new data directory gets, and SQLite, which a data
// directory made before the journal keeps.
var durableStores = []string{"journal", "sqlite"}

// startRelay starts a relay with the store a new data directory gets (the
// journal, in a temporary directory), as relayd runs; opt may adjust the
// server before it starts. It is shut down, and checked for leaked
// goroutines, when the test ends.
func startRelay(t *testing.T, opt ...func(*Server, *hub.Options)) *relay {
	t.Helper()
	return startRelayOn(t, "journal", opt...)
}

// startRelayOn is startRelay with the durable store kind: "journal" or
// "sqlite".
func startRelayOn(t *testing.T, kind string, opt ...func(*Server, *hub.Options)) *relay {
	t.Helper()
	return startRelayWrapped(t, kind, nil, opt...)
}

// onEachStore runs test on each durable store, as a subtest named after it:
// for what the hub does differently when the store commits on the sender's
// goroutine (the journal) or on its committer (SQLite).
func onEachStore(t *testing.T, test func(t *testing.T, kind string)) {
	for _, kind := range durableStores {
		t.Run(kind, func(t *testing.T) { test(t, kind) })
	}
}

// startRelayWrapped is startRelayOn with the relay's handler wrapped by wrap
// (when not nil), for tests that watch the HTTP answers themselves.
func startRelayWrapped(t *testing.T, kind string, wrap func(http.Handler) http.Handler, opt ...func(*Server, *hub.Options)) *relay {
	t.Helper()
	base := runtime.NumGoroutine()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	st := openDurable(t, kind, dir)
	hopts := hub.Options{Store: st, Logger: log, Server: "relayd test"}
	srv := &Server{Logger: log, Version: "test", Legacy: func() Codec { return legacy.New(protocol.Limits{}) }}
	for _, o := range opt {
		o(srv, &hopts)
	}
	srv.Hub = hub.New(hopts)
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	t.Cleanup(func() { // after the relay's shutdown, before the goroutine check
		st.Close()
		if hopts.Store != st {
			hopts.Store.Close() // a store an option put in st's place
		}
		checkGoroutines(t, base)
	})
	hts := wstest.Serve(t, h, srv.Shutdown)
	return &relay{t: t, srv: srv, hts: hts, url: wstest.URL(hts), dir: dir}
}

// openDurable opens the durable store kind in dir, and closes it when the
// test ends (closing twice is harmless).
func openDurable(t *testing.T, kind, dir string) store.Store {
	t.Helper()
	var (
		st  store.Store
		err error
	)
	switch kind {
	case "journal":
		st, err = store.OpenJournal(context.Background(), dir, store.JournalOptions{})
	case "sqlite":
		st, err = store.Open(context.Background(), dir, store.Options{})
	default:
		t.Fatalf("no durable store %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// checkGoroutines fails the test if goroutines started during it are still
// running a moment after teardown.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	if !testkit.Eventually(5*time.Second, func() bool { return runtime.NumGoroutine() <= base }) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("goroutine leak: %d running, %d before the test\n%s", runtime.NumGoroutine(), base, buf)
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

// patience bounds how long a test waits for the relay (see wstest.Patience).
const patience = wstest.Patience

// dialRaw opens a WebSocket to path without saying hello.
func (r *relay) dialRaw(path string, header http.Header) *client {
	r.t.Helper()
	return &client{t: r.t, ws: wstest.Dial(r.t, r.url+path, header)}
}

// connect says hello as id and returns the client and its welcome.
func (r *relay) connect(id string, resumeAfter uint64) (*client, *protocol.Welcome) {
	r.t.Helper()
	return r.hello(&protocol.Hello{Proto: protocol.Version, ClientID: id, Host: "test-host", PID: 100, Agent: "test", ResumeAfter: resumeAfter})
}

// connectProvisional says hello as id asking for messages before their
// commit (provisional).
func (r *relay) connectProvisional(id string, resumeAfter uint64) *client {
	r.t.Helper()
	c, _ := r.hello(&protocol.Hello{Proto: protocol.Version, ClientID: id, Provisional: true, ResumeAfter: resumeAfter})
	return c
}

func (r *relay) hello(h *protocol.Hello) (*client, *protocol.Welcome) {
	r.t.Helper()
	c := r.dialRaw("/v1/ws", nil)
	c.id = h.ClientID
	c.send(h)
	return c, expect[*protocol.Welcome](c)
}

func (c *client) send(f protocol.Frame) {
	c.t.Helper()
	wstest.Send(c.t, c.id, c.ws, f)
}

func (c *client) writeText(s string) {
	c.t.Helper()
	wstest.Write(c.t, c.id, c.ws, []byte(s))
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
	return wstest.Read(c.ws, timeout)
}

// expect reads frames, skipping presence, until one of type T arrives.
func expect[T protocol.Frame](c *client) T {
	c.t.Helper()
	return wstest.Expect[T](c.t, c.id, c.ws, nil)
}

// closeStatus waits for the relay to close the connection and returns the
// close code and reason.
func (c *client) closeStatus() (websocket.StatusCode, string) {
	c.t.Helper()
	return wstest.CloseStatus(c.t, c.id, c.ws)
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
	wstest.WriteJSON(c.t, "legacy "+c.id, c.ws, v)
}

func (c *legacyClient) nextJSON() map[string]any {
	c.t.Helper()
	return wstest.ReadJSON(c.t, "legacy "+c.id, c.ws)
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
