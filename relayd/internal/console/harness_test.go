//go:build unix

package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/server"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
	"github.com/claude-relay/claude-relay/relayd/internal/wstest"
)

// patience bounds every wait: generous, since the race detector on a loaded
// 2-core machine is slow; a passing test never waits it out.
const patience = 20 * time.Second

// ---- a real relay on a loopback port, with the SQLite store

type relay struct {
	t     *testing.T
	srv   *server.Server
	hub   *hub.Hub
	hts   *httptest.Server
	url   string // http://127.0.0.1:PORT
	token string
}

type relayOpts struct {
	token string
	hub   func(*hub.Options)
	wrap  func(http.Handler) http.Handler
}

func startRelay(t *testing.T, o relayOpts) *relay {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st, err := store.Open(context.Background(), t.TempDir(), store.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hopts := hub.Options{Store: st, Logger: log, Server: "relayd test"}
	if o.hub != nil {
		o.hub(&hopts)
	}
	h := hub.New(hopts)
	srv := &server.Server{Hub: h, Logger: log, Version: "test", Token: o.token}
	var handler http.Handler = srv.Handler()
	if o.wrap != nil {
		handler = o.wrap(handler)
	}
	t.Cleanup(func() { st.Close() }) // after the relay's shutdown
	hts := wstest.Serve(t, handler, srv.Shutdown)
	return &relay{t: t, srv: srv, hub: h, hts: hts, url: hts.URL, token: o.token}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// ---- an agent: a real v1 WebSocket client

type agent struct {
	t      *testing.T
	id     string
	ws     *websocket.Conn
	frames chan protocol.Frame
	inbox  []*protocol.Message // messages read while waiting for an answer
}

func (r *relay) agent(id, status string) *agent {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	hdr := http.Header{}
	if r.token != "" {
		hdr.Set("Authorization", "Bearer "+r.token)
	}
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(r.url, "http")+"/v1/ws", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		r.t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(8 << 20)
	a := &agent{t: r.t, id: id, ws: ws, frames: make(chan protocol.Frame, 4096)}
	r.t.Cleanup(func() { ws.CloseNow() })
	a.send(&protocol.Hello{Proto: protocol.Version, ClientID: id, Host: "build-box", PID: 4242, Agent: "claude-code",
		Cwd: "/home/dev/src/" + strings.ToLower(id), Status: status})
	go func() {
		defer close(a.frames)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			f, err := protocol.Decode(b)
			if err != nil {
				r.t.Errorf("%s: bad frame %s: %v", id, b, err)
				return
			}
			a.frames <- f
		}
	}()
	expectFrame[*protocol.Welcome](a)
	return a
}

func (a *agent) send(f protocol.Frame) {
	a.t.Helper()
	wstest.Send(a.t, a.id, a.ws, f)
}

// expectFrame returns the next frame of type T, skipping presence and mail
// events.
func expectFrame[T protocol.Frame](a *agent) T {
	a.t.Helper()
	deadline := time.After(patience)
	for {
		select {
		case f, ok := <-a.frames:
			if !ok {
				a.t.Fatalf("%s: connection closed waiting for %T", a.id, *new(T))
			}
			if v, ok := f.(T); ok {
				return v
			}
			switch f.(type) {
			case *protocol.Presence, *protocol.Mail:
				continue
			}
			a.t.Fatalf("%s: got %T %+v, want %T", a.id, f, f, *new(T))
		case <-deadline:
			a.t.Fatalf("%s: no %T within %s", a.id, *new(T), patience)
		}
	}
}

// sendTo sends body and returns the relay's answer (accepted or error).
func (a *agent) sendTo(ref, to, body string) protocol.Frame {
	a.t.Helper()
	a.send(&protocol.Send{Ref: ref, To: protocol.Recipients{to}, Body: body})
	return a.answer(ref)
}

// ---- a real browser, driven by a test

// driver is one browser engine: Chromium over the DevTools protocol
// (chromium_test.go) or Firefox over WebDriver BiDi (firefox_test.go).
type driver interface {
	// evaluate runs JavaScript in the page (a script: its completion value
	// is the result; a promise is awaited) and returns the value as JSON.
	evaluate(expr string) (json.RawMessage, error)
	// navigate loads url.
	navigate(url string) error
	// press sends real key events to the focused element: "Tab",
	// "Shift+Tab", "Enter", or one character.
	press(key string) error
	// viewport sets the page's size in CSS pixels.
	viewport(width, height int) error
	screenshot() ([]byte, error)
	// logs are the page's console messages and uncaught exceptions.
	logs() []string
}

type browser struct {
	t   *testing.T
	drv driver
}

// browsers are the engines the page is tested in.
var browsers = []struct {
	name  string
	start func(t *testing.T) driver
}{
	{"chromium", startChromium},
	{"firefox", startFirefox},
}

// startBrowser starts headless Chromium (the screenshot's and the scale
// measurement's browser).
func startBrowser(t *testing.T) *browser {
	t.Helper()
	return &browser{t: t, drv: startChromium(t)}
}

// eachBrowser runs scenario in every engine, each in a subtest of its own.
func eachBrowser(t *testing.T, scenario func(t *testing.T, b *browser)) {
	for _, e := range browsers {
		t.Run(e.name, func(t *testing.T) {
			scenario(t, &browser{t: t, drv: e.start(t)})
		})
	}
}

// eval runs a JavaScript expression in the page (awaiting a promise) and
// decodes its value into out (when not nil).
func (b *browser) eval(expr string, out any) error {
	v, err := b.drv.evaluate(expr)
	if err != nil {
		return err
	}
	if out != nil && len(v) > 0 && string(v) != "null" {
		return json.Unmarshal(v, out)
	}
	return nil
}

func (b *browser) must(expr string, out any) {
	b.t.Helper()
	if err := b.eval(expr, out); err != nil {
		b.t.Fatalf("in the page: %s: %v", expr, err)
	}
}

// navigate loads url and waits until the document has loaded.
func (b *browser) navigate(url string) {
	b.t.Helper()
	if err := b.drv.navigate(url); err != nil {
		b.t.Fatalf("navigate to %s: %v", url, err)
	}
	b.waitJS("the page at "+url+" to load", `document.readyState === "complete" && location.href.startsWith(`+jsString(url)+`)`)
}

// press sends real key events, one key after the other.
func (b *browser) press(keys ...string) {
	b.t.Helper()
	for _, k := range keys {
		if err := b.drv.press(k); err != nil {
			b.t.Fatalf("press %q: %v", k, err)
		}
	}
}

// typeText types s, a key per character.
func (b *browser) typeText(s string) {
	b.t.Helper()
	for _, r := range s {
		b.press(string(r))
	}
}

func (b *browser) viewport(width, height int) {
	b.t.Helper()
	if err := b.drv.viewport(width, height); err != nil {
		b.t.Fatalf("set the viewport to %d×%d: %v", width, height, err)
	}
}

// waitJS polls a boolean expression every 10 ms until it holds and
// returns how long that took.
func (b *browser) waitJS(what, expr string) time.Duration {
	b.t.Helper()
	start := time.Now()
	var err error
	if testkit.Eventually(patience, func() bool {
		var ok bool
		err = b.eval("!!("+expr+")", &ok)
		return err == nil && ok
	}) {
		return time.Since(start)
	}
	var body string
	b.eval(`document.body ? document.body.innerText.slice(0, 2000) : ""`, &body)
	b.t.Fatalf("timed out waiting for %s (%s; last error %v)\npage text:\n%s\nconsole:\n%s", what, expr, err, body,
		strings.Join(b.drv.logs(), "\n"))
	return 0
}

// screenshot writes a PNG of the page.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	png, err := b.drv.screenshot()
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// readAll is io.ReadAll of a response body, closed.
func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// contextWithStop is r's context, also cancelled when stop closes.
func contextWithStop(r *http.Request, stop <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// reply sends body to `to` as a reply to msgID and returns the answer.
func (a *agent) reply(ref, to, msgID, body string) protocol.Frame {
	a.t.Helper()
	a.send(&protocol.Send{Ref: ref, To: protocol.Recipients{to}, Body: body, ReplyTo: msgID})
	return a.answer(ref)
}

// answer waits for the accepted or error frame for ref; messages that
// arrive meanwhile are kept in inbox.
func (a *agent) answer(ref string) protocol.Frame {
	a.t.Helper()
	deadline := time.After(patience)
	for {
		select {
		case f := <-a.frames:
			switch f := f.(type) {
			case *protocol.Accepted:
				if f.Ref == ref {
					return f
				}
			case *protocol.ErrorFrame:
				if f.Ref == ref {
					return f
				}
			case *protocol.Message:
				a.inbox = append(a.inbox, f)
			}
		case <-deadline:
			a.t.Fatalf("%s: no answer to send %s", a.id, ref)
		}
	}
}

// nextMessage returns the next message (kept or new).
func (a *agent) nextMessage() *protocol.Message {
	a.t.Helper()
	if len(a.inbox) > 0 {
		m := a.inbox[0]
		a.inbox = a.inbox[1:]
		return m
	}
	return expectFrame[*protocol.Message](a)
}

// loop has a and b thank each other, each message a reply to the last
// (the first to after), until the relay warns of a loop (at most 8
// messages); it reports whether it warned.
func loop(t *testing.T, a, b *agent, after string) bool {
	t.Helper()
	last := after
	for i := range 8 {
		from, to := a, b
		if i%2 == 1 {
			from, to = b, a
		}
		acc, ok := from.reply(fmt.Sprintf("l%d", i), to.id, last, "thanks! "+fmt.Sprint(i)).(*protocol.Accepted)
		if !ok {
			t.Fatalf("loop message %d refused", i)
		}
		last = acc.ID
		if acc.Warning != "" {
			return true
		}
	}
	return false
}
