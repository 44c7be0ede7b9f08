package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// Clients of the older Node relay and v1 clients see each other and talk.
func TestLegacyInterop(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind)
		v1, _ := r.connect("CC-1", 0)
		old := r.connectLegacy("OLD-1", "")
		if pr := expect[*protocol.Presence](v1); pr.Peer.ID != "OLD-1" || !pr.Peer.Legacy || pr.Peer.Host != "old-box" {
			t.Fatalf("presence = %+v", pr)
		}

		v1.send(&protocol.Send{Ref: "1", To: protocol.Recipients{"OLD-1"}, Body: "from v1"})
		if st := statuses(expect[*protocol.Accepted](v1)); st["OLD-1"] != protocol.StatusDelivered {
			t.Fatalf("status = %v", st)
		}
		m := old.nextOfType("message")
		if m["from"] != "CC-1" || m["content"] != "from v1" {
			t.Fatalf("legacy got %v", m)
		}
		if _, err := time.Parse(time.RFC3339Nano, m["timestamp"].(string)); err != nil {
			t.Fatalf("timestamp %v: %v", m["timestamp"], err)
		}

		old.writeJSON(map[string]any{"type": "message", "to": "all", "content": "from the old side"})
		if got := expect[*protocol.Message](v1); got.From != "OLD-1" || got.Body != "from the old side" {
			t.Fatalf("v1 got %+v", got)
		}
		old.writeJSON(map[string]any{"type": "message", "to": "CC-1", "content": "direct"})
		if got := expect[*protocol.Message](v1); got.Body != "direct" {
			t.Fatalf("v1 got %+v", got)
		}

		old.writeJSON(map[string]any{"type": "get_peers"})
		p := old.nextOfType("peers")
		if !reflect.DeepEqual(p["peers"], []any{"CC-1", "OLD-1"}) || p["self"] != "OLD-1" {
			t.Fatalf("peers = %v", p)
		}
		old.writeJSON(map[string]any{"type": "get_sessions"})
		if s := old.nextOfType("sessions"); len(s["sessions"].([]any)) != 2 || s["self"] != "OLD-1" {
			t.Fatalf("sessions = %v", s)
		}
		old.writeJSON(map[string]any{"type": "get_history", "count": 10})
		h := old.nextOfType("history")
		var contents []any
		for _, m := range h["messages"].([]any) {
			contents = append(contents, m.(map[string]any)["content"])
		}
		if !reflect.DeepEqual(contents, []any{"from v1", "from the old side", "direct"}) {
			t.Fatalf("history = %v", contents)
		}
		old.writeJSON(map[string]any{"type": "clear_history"})
		if c := old.nextOfType("history_cleared"); c["cleared"].(float64) != 3 {
			t.Fatalf("cleared = %v", c)
		}

		old.writeJSON(map[string]any{"type": "message", "to": "NOBODY", "content": "x"})
		if e := old.nextOfType("error"); e["message"] == "" {
			t.Fatalf("error = %v", e)
		}
		old.writeJSON(map[string]any{"type": "bogus"})
		if e := old.nextOfType("error"); e["message"] == "" {
			t.Fatalf("error = %v", e)
		}

		// A v1 client joining shows up for the older client with the full list.
		r.connect("CC-2", 0)
		j := old.nextOfType("peer_joined")
		if j["clientId"] != "CC-2" || !reflect.DeepEqual(j["peers"], []any{"CC-1", "CC-2", "OLD-1"}) {
			t.Fatalf("peer_joined = %v", j)
		}
	})
}

// Older clients cannot ack; what reached their socket is not sent again.
func TestLegacyAutoAck(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind)
		v1, _ := r.connect("CC-1", 0)
		old := r.connectLegacy("OLD-1", "")
		v1.send(&protocol.Send{Ref: "1", To: protocol.Recipients{"OLD-1"}, Body: "once"})
		expect[*protocol.Accepted](v1)
		old.nextOfType("message")
		old.ws.CloseNow()
		for {
			if pr := expect[*protocol.Presence](v1); pr.Event == protocol.PresenceLeft {
				break
			}
		}
		v1.send(&protocol.Send{Ref: "2", To: protocol.Recipients{"OLD-1"}, Body: "twice?"})
		expect[*protocol.Accepted](v1)
		again := r.connectLegacy("OLD-1", "")
		if m := again.nextOfType("message"); m["content"] != "twice?" {
			t.Fatalf("after reconnect got %v, want only the unsent message", m)
		}
	})
}

// A ping is answered before register too, and a frame other than register
// first is refused in the older protocol's words.
func TestLegacyBeforeRegister(t *testing.T) {
	r := startRelay(t)
	c := &legacyClient{r.dialRaw("/", nil)}
	c.id = "OLD-EARLY"
	c.writeJSON(map[string]any{"type": "ping"})
	if p := c.nextJSON(); p["type"] != "pong" {
		t.Fatalf("got %v, want pong", p)
	}
	c.writeJSON(map[string]any{"type": "get_peers"})
	if e := c.nextJSON(); e["type"] != "error" || !strings.Contains(e["message"].(string), `{"type":"register"`) {
		t.Fatalf("got %v, want an error naming register", e)
	}
	c.writeJSON(map[string]any{"type": "register", "clientId": c.id})
	if got := c.nextJSON(); got["type"] != "registered" {
		t.Fatalf("got %v, want registered", got)
	}
}
