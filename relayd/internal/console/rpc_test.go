//go:build unix

package console_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// What the two browser drivers share: starting the browser and waiting for
// the line where it says its debugging address, and JSON calls over a
// WebSocket matched to their answers by id (the DevTools protocol and
// WebDriver BiDi frame them alike).

// findBrowser returns the path in the environment variable env, or the
// first of names found on PATH, or "".
func findBrowser(env string, names ...string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// launch starts a browser in its own process group (killed with the test)
// and returns the first match of listening in its stderr.
func launch(t *testing.T, name, path string, args []string, listening *regexp.Regexp) string {
	t.Helper()
	cmd := exec.Command(path, args...)
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
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(3 * patience): // a loaded machine starts a browser slowly
		outMu.Lock()
		defer outMu.Unlock()
		t.Fatalf("%s did not say where it listens within %s; it said:\n%s", name, 3*patience, strings.Join(out, "\n"))
		return ""
	}
}

// rpc is a JSON call-and-answer connection to a browser.
type rpc struct {
	ws      *websocket.Conn
	next    atomic.Int64
	mu      sync.Mutex
	pending map[int64]chan rpcReply
	console []string // what onEvent kept: the page's console and exceptions
	// onEvent says whether an event (a frame without id) is worth keeping
	// in console.
	onEvent func(method string, params json.RawMessage) bool
}

type rpcReply struct {
	result json.RawMessage
	err    error
}

func dialRPC(t *testing.T, url string, onEvent func(string, json.RawMessage) bool) *rpc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("attach to the browser at %s: %v", url, err)
	}
	ws.SetReadLimit(64 << 20)
	r := &rpc{ws: ws, pending: map[int64]chan rpcReply{}, onEvent: onEvent}
	t.Cleanup(func() { ws.CloseNow() })
	go r.readLoop()
	return r
}

func (r *rpc) readLoop() {
	for {
		_, data, err := r.ws.Read(context.Background())
		if err != nil {
			return
		}
		var msg struct {
			ID     int64           `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			// DevTools: {"message": …}; BiDi: a code, with message beside.
			Error   json.RawMessage `json:"error"`
			Message string          `json:"message"`
		}
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		if msg.ID == 0 {
			if msg.Method != "" && r.onEvent(msg.Method, msg.Params) {
				r.mu.Lock()
				r.console = append(r.console, msg.Method+" "+string(msg.Params))
				r.mu.Unlock()
			}
			continue
		}
		rep := rpcReply{result: msg.Result}
		if len(msg.Error) > 0 && string(msg.Error) != "null" {
			var e struct {
				Message string `json:"message"`
			}
			var code string
			if json.Unmarshal(msg.Error, &code) == nil {
				e.Message = code + ": " + msg.Message
			} else {
				json.Unmarshal(msg.Error, &e)
			}
			rep.err = errors.New(e.Message)
		}
		r.mu.Lock()
		ch := r.pending[msg.ID]
		delete(r.pending, msg.ID)
		r.mu.Unlock()
		if ch != nil {
			ch <- rep
		}
	}
}

func (r *rpc) call(method string, params any) (json.RawMessage, error) {
	return r.callWithin(patience, method, params)
}

// callWithin is call with its own bound on the answer: a browser answers
// its first command only once it has started up, which a loaded machine
// stretches well past patience.
func (r *rpc) callWithin(within time.Duration, method string, params any) (json.RawMessage, error) {
	if params == nil {
		params = map[string]any{}
	}
	id := r.next.Add(1)
	ch := make(chan rpcReply, 1)
	r.mu.Lock()
	r.pending[id] = ch
	r.mu.Unlock()
	req, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := r.ws.Write(ctx, websocket.MessageText, req); err != nil {
		return nil, err
	}
	select {
	case rep := <-ch:
		if rep.err != nil {
			return nil, fmt.Errorf("%s: %w", method, rep.err)
		}
		return rep.result, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: no answer within %s", method, within)
	}
}

func (r *rpc) logs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.console)
}

// pngOf decodes a screenshot's answer: {"data": base64 PNG} in both
// protocols.
func pngOf(res json.RawMessage, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	var r struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(r.Data)
}
