//go:build unix

package console_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/server"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
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
	hts := httptest.NewServer(handler)
	r := &relay{t: t, srv: srv, hub: h, hts: hts, url: hts.URL, token: o.token}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hts.Close()
		st.Close()
	})
	return r
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
	b, err := protocol.Encode(f)
	if err != nil {
		a.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := a.ws.Write(ctx, websocket.MessageText, b); err != nil {
		a.t.Fatalf("%s: write: %v", a.id, err)
	}
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

// ---- headless Chromium, driven over the DevTools protocol

// findChromium returns a Chromium binary's path, or "".
func findChromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

type browser struct {
	t       *testing.T
	ws      *websocket.Conn
	next    atomic.Int64
	mu      sync.Mutex
	pending map[int64]chan cdpReply
	console []string // console messages and exceptions of the page
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

var devtoolsRe = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startBrowser runs headless Chromium in its own process group (killed
// with the test) and attaches to its page.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := findChromium()
	if path == "" {
		t.Skip("no Chromium found (looked for chromium, chromium-browser, google-chrome, headless_shell; CHROMIUM sets the path): " +
			"the console's browser tests are skipped — install Debian's chromium package (.ci/run does) to run them")
	}
	cmd := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=1440,900",
		"--user-data-dir="+t.TempDir(), "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	errp, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	found := make(chan string, 1)
	var outMu sync.Mutex
	var out []string
	go func() {
		sc := bufio.NewScanner(errp)
		for sc.Scan() {
			outMu.Lock()
			out = append(out, sc.Text())
			outMu.Unlock()
			if m := devtoolsRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	var wsURL string
	select {
	case wsURL = <-found:
	case <-time.After(3 * patience): // a loaded machine starts a browser slowly
		outMu.Lock()
		defer outMu.Unlock()
		t.Fatalf("Chromium did not say where its DevTools listen within %s; it said:\n%s", 3*patience, strings.Join(out, "\n"))
	}
	// The page target: /json/list on the same port.
	hostport := strings.SplitN(strings.TrimPrefix(wsURL, "ws://"), "/", 2)[0]
	var pageWS string
	deadline := time.Now().Add(patience)
	for pageWS == "" {
		if time.Now().After(deadline) {
			t.Fatal("Chromium listed no page target")
		}
		resp, err := http.Get("http://" + hostport + "/json/list")
		if err == nil {
			var targets []struct {
				Type string `json:"type"`
				WS   string `json:"webSocketDebuggerUrl"`
			}
			json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
			for _, tg := range targets {
				if tg.Type == "page" {
					pageWS = tg.WS
				}
			}
		}
		if pageWS == "" {
			time.Sleep(50 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, pageWS, nil)
	if err != nil {
		t.Fatalf("attach to Chromium's page: %v", err)
	}
	ws.SetReadLimit(64 << 20)
	b := &browser{t: t, ws: ws, pending: map[int64]chan cdpReply{}}
	t.Cleanup(func() { ws.CloseNow() })
	go b.readLoop()
	b.call("Runtime.enable", nil)
	b.call("Page.enable", nil)
	return b
}

func (b *browser) readLoop() {
	for {
		_, data, err := b.ws.Read(context.Background())
		if err != nil {
			return
		}
		var msg struct {
			ID     int64           `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			cdpReply
		}
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		if msg.ID == 0 {
			if msg.Method == "Runtime.exceptionThrown" || msg.Method == "Runtime.consoleAPICalled" {
				b.mu.Lock()
				b.console = append(b.console, msg.Method+" "+string(msg.Params))
				b.mu.Unlock()
			}
			continue
		}
		b.mu.Lock()
		ch := b.pending[msg.ID]
		delete(b.pending, msg.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- msg.cdpReply
		}
	}
}

func (b *browser) call(method string, params any) json.RawMessage {
	b.t.Helper()
	res, err := b.try(method, params)
	if err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
	return res
}

func (b *browser) try(method string, params any) (json.RawMessage, error) {
	id := b.next.Add(1)
	ch := make(chan cdpReply, 1)
	b.mu.Lock()
	b.pending[id] = ch
	b.mu.Unlock()
	req, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := b.ws.Write(ctx, websocket.MessageText, req); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return nil, errors.New(r.Error.Message)
		}
		return r.Result, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("no answer within %s", patience)
	}
}

// eval runs a JavaScript expression in the page (awaiting a promise) and
// decodes its value into out (when not nil).
func (b *browser) eval(expr string, out any) error {
	res, err := b.try("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	if err != nil {
		return err
	}
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("%s: %s", r.Exception.Text, r.Exception.Exception.Description)
	}
	if out != nil && len(r.Result.Value) > 0 {
		return json.Unmarshal(r.Result.Value, out)
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
	b.call("Page.navigate", map[string]any{"url": url})
	b.waitJS("the page at "+url+" to load", `document.readyState === "complete" && location.href.startsWith(`+jsString(url)+`)`)
}

// waitJS polls a boolean expression every 10 ms until it holds and
// returns how long that took.
func (b *browser) waitJS(what, expr string) time.Duration {
	b.t.Helper()
	start := time.Now()
	deadline := start.Add(patience)
	for {
		var ok bool
		err := b.eval("!!("+expr+")", &ok)
		if err == nil && ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			var body string
			b.eval(`document.body ? document.body.innerText.slice(0, 2000) : ""`, &body)
			b.mu.Lock()
			logs := strings.Join(b.console, "\n")
			b.mu.Unlock()
			b.t.Fatalf("timed out waiting for %s (%s; last error %v)\npage text:\n%s\nconsole:\n%s", what, expr, err, body, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// screenshot writes a PNG of the page.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	res := b.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": false})
	var r struct {
		Data string `json:"data"`
	}
	json.Unmarshal(res, &r)
	png, err := base64.StdEncoding.DecodeString(r.Data)
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
