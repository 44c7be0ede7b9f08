package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/relayd/internal/wstest"
)

// relaydAdds are the keys relayd adds to the older relay's frames. Any
// other key a frame has beyond its golden one fails the transcript: an
// addition is a decision, written down in docs/protocol.md.
var relaydAdds = map[string]bool{
	"id": true, // a message's id, in message and history items
}

// An older client's session on / receives, frame by frame, what the older
// Node relay sent: testdata/legacy-session.txt holds the script and the
// frames, written from its rules.
func TestLegacyTranscript(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		steps := readScript(t, "testdata/legacy-session.txt")
		r := startRelayOn(t, kind)
		start := time.Now()
		clients := map[string]*websocket.Conn{}
		conn := func(who string) *websocket.Conn {
			if c := clients[who]; c != nil {
				return c
			}
			c := r.dialRaw("/", nil).ws
			clients[who] = c
			return c
		}
		for _, s := range steps {
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			switch s.op {
			case ">":
				if err := conn(s.who).Write(ctx, websocket.MessageText, []byte(s.frame)); err != nil {
					t.Fatalf("line %d: %s sends: %v", s.line, s.who, err)
				}
			case "leaves":
				if err := conn(s.who).Close(websocket.StatusNormalClosure, ""); err != nil {
					t.Fatalf("line %d: %s leaves: %v", s.line, s.who, err)
				}
			case "<":
				_, got, err := conn(s.who).Read(ctx)
				if err != nil {
					t.Fatalf("line %d: %s waits for %s: %v", s.line, s.who, s.frame, err)
				}
				want, err := parseOrdered([]byte(s.frame))
				if err != nil {
					t.Fatalf("line %d: the golden frame is not JSON: %v", s.line, err)
				}
				have, err := parseOrdered(got)
				if err != nil {
					t.Fatalf("line %d: %s got %s, not JSON: %v", s.line, s.who, got, err)
				}
				m := matcher{from: start, to: time.Now()}
				m.match("", want, have)
				if len(m.diffs) > 0 {
					t.Errorf("line %d: %s got\n\t%s\nwant\n\t%s\n%s", s.line, s.who, got, s.frame, strings.Join(m.diffs, "\n"))
				}
			}
			cancel()
		}
	})
}

type step struct {
	line  int
	op    string // ">", "<" or "leaves"
	who   string
	frame string
}

// readScript reads a transcript: see the head of testdata/legacy-session.txt.
func readScript(t *testing.T, path string) []step {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var steps []step
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, " "):
			if len(steps) == 0 || steps[len(steps)-1].op != "<" {
				t.Fatalf("%s:%d: a continuation line after no frame", path, i+1)
			}
			steps[len(steps)-1].frame += strings.TrimSpace(line)
		default:
			f := strings.SplitN(line, " ", 3)
			switch {
			case len(f) == 3 && (f[0] == ">" || f[0] == "<"):
				steps = append(steps, step{i + 1, f[0], f[1], f[2]})
			case len(f) == 2 && f[1] == "leaves":
				steps = append(steps, step{i + 1, "leaves", f[0], ""})
			default:
				t.Fatalf("%s:%d: cannot read %q", path, i+1, line)
			}
		}
	}
	if len(steps) < 10 {
		t.Fatalf("%s: only %d steps: is the reader broken?", path, len(steps))
	}
	return steps
}

// object is a JSON object with its keys in the order they were written.
type object struct {
	keys []string
	vals map[string]any
}

// parseOrdered reads one JSON value, keeping each object's key order;
// numbers are json.Number.
func parseOrdered(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	v, err := parseValue(d)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("text after the value")
	}
	return v, nil
}

func parseValue(d *json.Decoder) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := &object{vals: map[string]any{}}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return nil, err
			}
			v, err := parseValue(d)
			if err != nil {
				return nil, err
			}
			o.keys = append(o.keys, k.(string))
			o.vals[k.(string)] = v
		}
		_, err := d.Token()
		return o, err
	case json.Delim('['):
		a := []any{}
		for d.More() {
			v, err := parseValue(d)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := d.Token()
		return a, err
	}
	return tok, nil
}

// matcher compares a received frame with its golden frame.
type matcher struct {
	from, to time.Time // the run: placeholder times fall within it
	diffs    []string
}

// isoMillis is the form of JavaScript's Date.toISOString.
var isoMillis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func (m *matcher) fail(path, format string, args ...any) {
	if path == "" {
		path = "frame"
	}
	m.diffs = append(m.diffs, "\t"+path+": "+fmt.Sprintf(format, args...))
}

func jsonType(v any) string {
	switch v.(type) {
	case *object:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func (m *matcher) match(path string, want, got any) {
	switch w := want.(type) {
	case string:
		switch w {
		case "<iso8601>":
			s, ok := got.(string)
			if !ok {
				m.fail(path, "is JSON %s, want a string (an ISO 8601 time)", jsonType(got))
				return
			}
			ts, err := time.Parse(time.RFC3339Nano, s)
			if !isoMillis.MatchString(s) || err != nil {
				m.fail(path, "%q is not an ISO 8601 time as toISOString writes it", s)
			} else if ts.Before(m.from.Truncate(time.Millisecond)) || ts.After(m.to) {
				m.fail(path, "%s is outside the test's run %s … %s", s, m.from.UTC(), m.to.UTC())
			}
			return
		case "<ms>":
			n, ok := got.(json.Number)
			if !ok {
				m.fail(path, "is JSON %s, want a number (milliseconds since the epoch)", jsonType(got))
				return
			}
			ms, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil || ms < m.from.UnixMilli() || ms > m.to.UnixMilli() {
				m.fail(path, "%s is not a whole number of milliseconds within the test's run %d … %d", n, m.from.UnixMilli(), m.to.UnixMilli())
			}
			return
		case "<text>":
			if s, ok := got.(string); !ok || s == "" {
				m.fail(path, "is %s %v, want a non-empty string", jsonType(got), got)
			}
			return
		}
	case *object:
		g, ok := got.(*object)
		if !ok {
			m.fail(path, "is JSON %s, want an object", jsonType(got))
			return
		}
		last := -1
		for _, k := range w.keys {
			i := indexOf(g.keys, k)
			if i < 0 {
				m.fail(path+"."+k, "missing")
				continue
			}
			if i < last {
				m.fail(path+"."+k, "comes before %q; the older relay wrote it after", g.keys[last])
			}
			last = max(last, i)
			m.match(path+"."+k, w.vals[k], g.vals[k])
		}
		for _, k := range g.keys {
			if _, golden := w.vals[k]; !golden && !relaydAdds[k] {
				m.fail(path+"."+k, "is a key the older relay did not send and relayd does not document as its addition (relaydAdds)")
			}
		}
		return
	case []any:
		g, ok := got.([]any)
		if !ok {
			m.fail(path, "is JSON %s, want an array", jsonType(got))
			return
		}
		if len(g) != len(w) {
			m.fail(path, "has %d items, want %d", len(g), len(w))
			return
		}
		for i := range w {
			m.match(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])
		}
		return
	}
	if jsonType(got) != jsonType(want) {
		m.fail(path, "is JSON %s (%v), want %s (%v)", jsonType(got), got, jsonType(want), want)
	} else if got != want {
		m.fail(path, "is %v, want %v", got, want)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// A client of the older relay written in a typed language — here Go, with
// a struct per frame — runs a whole session on /: "to" is a string, a
// message's timestamp a string and pong's a number. A frame with another
// JSON type in one of these fields fails to decode, as it would for that
// client.
func TestLegacyTypedClient(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind)
		start := time.Now()
		a := &oldClient{t: t, ws: r.dialRaw("/", nil).ws, id: "TYPED-A"}
		b := &oldClient{t: t, ws: r.dialRaw("/", nil).ws, id: "TYPED-B"}

		if reg := a.register(); len(reg.Peers) != 0 || reg.ClientID != "TYPED-A" {
			t.Fatalf("A registered = %+v, want no other peers", reg)
		}
		if reg := b.register(); strings.Join(reg.Peers, ",") != "TYPED-A" {
			t.Fatalf("B registered = %+v, want peers [TYPED-A]", reg)
		}
		if j := recv[oldPresence](a, "peer_joined"); j.ClientID != "TYPED-B" || strings.Join(j.Peers, ",") != "TYPED-A,TYPED-B" {
			t.Fatalf("A peer_joined = %+v", j)
		}

		checkMessage := func(m oldMessage, from, to, content string) {
			t.Helper()
			ts, err := time.Parse(time.RFC3339Nano, m.Timestamp)
			if m.From != from || m.To != to || m.Content != content || err != nil || ts.Before(start.Truncate(time.Millisecond)) || ts.After(time.Now()) {
				t.Fatalf("message = %+v (timestamp: %v), want from %s to %q: %q, stamped now", m, err, from, to, content)
			}
		}
		a.send(map[string]any{"type": "message", "to": "TYPED-B", "content": "direct"})
		checkMessage(recv[oldMessage](b, "message"), "TYPED-A", "TYPED-B", "direct")
		a.send(map[string]any{"type": "message", "content": "to everyone"})
		checkMessage(recv[oldMessage](b, "message"), "TYPED-A", "all", "to everyone")
		b.send(map[string]any{"type": "message", "to": "all", "content": "to all"})
		checkMessage(recv[oldMessage](a, "message"), "TYPED-B", "all", "to all")

		a.send(map[string]any{"type": "get_peers"})
		if p := recv[oldPeers](a, "peers"); strings.Join(p.Peers, ",") != "TYPED-A,TYPED-B" || p.Self != "TYPED-A" {
			t.Fatalf("peers = %+v", p)
		}
		b.send(map[string]any{"type": "get_history", "count": 10})
		h := recv[oldHistory](b, "history")
		if len(h.Messages) != 3 {
			t.Fatalf("history = %+v, want 3 messages", h)
		}
		for i, want := range []struct{ from, to, content string }{{"TYPED-A", "TYPED-B", "direct"}, {"TYPED-A", "all", "to everyone"}, {"TYPED-B", "all", "to all"}} {
			if h.Messages[i].Type != "message" {
				t.Fatalf("history item %d has type %q, want message", i, h.Messages[i].Type)
			}
			checkMessage(h.Messages[i], want.from, want.to, want.content)
		}

		a.send(map[string]any{"type": "ping"})
		if p := recv[oldPong](a, "pong"); p.Timestamp < start.UnixMilli() || p.Timestamp > time.Now().UnixMilli() {
			t.Fatalf("pong = %+v, want now in milliseconds", p)
		}
		a.sendText("{nope")
		if e := recv[oldError](a, "error"); e.Message == "" {
			t.Fatalf("error = %+v, want a message", e)
		}

		b.ws.Close(websocket.StatusNormalClosure, "")
		if l := recv[oldPresence](a, "peer_left"); l.ClientID != "TYPED-B" || strings.Join(l.Peers, ",") != "TYPED-A" {
			t.Fatalf("peer_left = %+v", l)
		}
	})
}

// The typed client's frames, shaped as the older relay's clients declare
// them.
type (
	oldRegistered struct {
		Type     string   `json:"type"`
		ClientID string   `json:"clientId"`
		Peers    []string `json:"peers"`
	}
	oldPresence = oldRegistered // peer_joined, peer_left
	oldMessage  struct {
		Type      string `json:"type"`
		From      string `json:"from"`
		To        string `json:"to"`
		Content   string `json:"content"`
		Timestamp string `json:"timestamp"`
	}
	oldHistory struct {
		Type     string       `json:"type"`
		Messages []oldMessage `json:"messages"`
	}
	oldPeers struct {
		Type  string   `json:"type"`
		Peers []string `json:"peers"`
		Self  string   `json:"self"`
	}
	oldPong struct {
		Type      string `json:"type"`
		Timestamp int64  `json:"timestamp"`
	}
	oldError struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
)

type oldClient struct {
	t  *testing.T
	ws *websocket.Conn
	id string
}

func (c *oldClient) register() oldRegistered {
	c.t.Helper()
	c.send(map[string]any{"type": "register", "clientId": c.id})
	reg := recv[oldRegistered](c, "registered")
	if reg.Peers == nil {
		c.t.Fatalf("%s: registered.peers is null, want a list", c.id)
	}
	return reg
}

func (c *oldClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendText(string(b))
}

func (c *oldClient) sendText(s string) {
	c.t.Helper()
	wstest.Write(c.t, c.id, c.ws, []byte(s))
}

// recv reads c's next frame, which must be of type typ, into a T.
func recv[T any](c *oldClient, typ string) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("%s: waiting for %s: %v", c.id, typ, err)
	}
	var v T
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil || head.Type != typ {
		c.t.Fatalf("%s: got %s, want a %s frame", c.id, b, typ)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		c.t.Fatalf("%s: a typed client cannot read %s: %v", c.id, b, err)
	}
	return v
}
