// Package wstest is the WebSocket side of relayd's tests: it serves a relay
// on a loopback port, dials it, writes protocol v1 frames and reads them
// back, each step bounded, so that a test fails saying what it waited for
// instead of hanging. Each test package keeps its own small client type
// (its id, its helpers); what every such client does the same way lives
// here.
package wstest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
)

// Patience bounds each dial, write and wait for a frame. It is generous:
// the race detector on a loaded 2-core machine can be many times slower
// than usual, and a passing test never waits it out.
const Patience = 20 * time.Second

// readLimit is above the relay's largest answer (a full history page).
const readLimit = 8 << 20

// Serve serves a relay's handler h on a loopback port until the test ends;
// then it shuts the relay down with shutdown (its Shutdown: connections
// are closed with a going-away code), within 5 s, and closes the listener.
// The server's URL is http://127.0.0.1:PORT; URL gives the ws:// one.
func Serve(t testing.TB, h http.Handler, shutdown func(context.Context) error) *httptest.Server {
	t.Helper()
	hts := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("relay shutdown: %v", err)
		}
		hts.Close()
	})
	return hts
}

// URL is hts's address as a WebSocket URL: ws://127.0.0.1:PORT.
func URL(hts *httptest.Server) string { return "ws" + strings.TrimPrefix(hts.URL, "http") }

// Dial opens a WebSocket to url (ws://host:port/path) with header (may be
// nil) and closes it when the test ends.
func Dial(t testing.TB, url string, header http.Header) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	ws.SetReadLimit(readLimit)
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

// Write writes b as one text message; a failure fails t, naming the
// client who.
func Write(t testing.TB, who string, ws *websocket.Conn, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("%s: write: %v", who, err)
	}
}

// Send encodes f and writes it.
func Send(t testing.TB, who string, ws *websocket.Conn, f protocol.Frame) {
	t.Helper()
	b, err := protocol.Encode(f)
	if err != nil {
		t.Fatal(err)
	}
	Write(t, who, ws, b)
}

// WriteJSON writes v as JSON: a frame of the older protocol.
func WriteJSON(t testing.TB, who string, ws *websocket.Conn, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	Write(t, who, ws, b)
}

// ReadJSON reads the next message, a frame of the older protocol: a JSON
// object. None within Patience, or one that is not JSON, fails t.
func ReadJSON(t testing.TB, who string, ws *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("%s: read: %v", who, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %s is not JSON: %v", who, b, err)
	}
	return m
}

// Read reads and decodes the next frame, giving up after within.
func Read(ws *websocket.Conn, within time.Duration) (protocol.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	_, b, err := ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	return protocol.Decode(b)
}

// Expect reads frames until one of type T arrives and returns it. Presence
// is skipped, and so is any frame skip (when not nil) holds for; any other
// frame, or none within Patience, fails t.
func Expect[T protocol.Frame](t testing.TB, who string, ws *websocket.Conn, skip func(protocol.Frame) bool) T {
	t.Helper()
	for {
		f, err := Read(ws, Patience)
		if err != nil {
			t.Fatalf("%s: read: %v", who, err)
		}
		if v, ok := f.(T); ok {
			return v
		}
		if _, ok := f.(*protocol.Presence); ok || (skip != nil && skip(f)) {
			continue
		}
		var zero T
		t.Fatalf("%s: got %T %+v, want %T", who, f, f, zero)
	}
}

// CloseStatus reads until the relay closes the connection and returns the
// close code and reason. A connection that ends without a close frame, or
// not within Patience, fails t.
func CloseStatus(t testing.TB, who string, ws *websocket.Conn) (websocket.StatusCode, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	for {
		_, _, err := ws.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: connection ended without a close frame: %v", who, err)
		}
		return ce.Code, ce.Reason
	}
}
