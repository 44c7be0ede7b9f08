package cluster_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
)

// patience bounds every wait for the relay: generous, since the race
// detector on a loaded machine is slow, and never waited out when green.
const patience = 20 * time.Second

// client is a protocol v1 client of one relayd node.
type client struct {
	t  testing.TB
	ws *websocket.Conn
	id string
}

func dial(t testing.TB, url, path string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url+path, nil)
	if err != nil {
		t.Fatalf("dial %s%s: %v", url, path, err)
	}
	ws.SetReadLimit(8 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

// connect says hello to the relay at url as id.
func connect(t testing.TB, url, id string, resumeAfter uint64) (*client, *protocol.Welcome) {
	t.Helper()
	c := &client{t: t, ws: dial(t, url, "/v1/ws"), id: id}
	c.send(&protocol.Hello{Proto: protocol.Version, ClientID: id, Host: "host-" + id, PID: 1, Agent: "test", ResumeAfter: resumeAfter})
	return c, expect[*protocol.Welcome](c)
}

func (c *client) send(f protocol.Frame) {
	c.t.Helper()
	b, err := protocol.Encode(f)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("%s: write: %v", c.id, err)
	}
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

// expect reads frames, skipping presence and the relay's acks, until one of
// type T arrives.
func expect[T protocol.Frame](c *client) T {
	c.t.Helper()
	for {
		f, err := c.read(patience)
		if err != nil {
			c.t.Fatalf("%s: read: %v", c.id, err)
		}
		if v, ok := f.(T); ok {
			return v
		}
		switch f.(type) {
		case *protocol.Presence, *protocol.Ack:
			continue
		}
		var zero T
		c.t.Fatalf("%s: got %T %+v, want %T", c.id, f, f, zero)
	}
}

// sendTo sends body to ids and returns the relay's accepted.
func (c *client) sendTo(ref, body string, to ...string) *protocol.Accepted {
	c.t.Helper()
	c.send(&protocol.Send{Ref: ref, To: to, Body: body})
	return expect[*protocol.Accepted](c)
}

// peers asks the relay who is online.
func (c *client) peers() []string {
	c.t.Helper()
	c.send(&protocol.Peers{Ref: "p"})
	var ids []string
	for _, p := range expect[*protocol.Peers](c).Peers {
		ids = append(ids, p.ID)
	}
	return ids
}

// sessions asks the relay for every id it knows; its answer also says
// the relay has handled the frames before it.
func (c *client) sessions() []protocol.Session {
	c.t.Helper()
	c.send(&protocol.Sessions{Ref: "s"})
	return expect[*protocol.Sessions](c).Sessions
}

// waitGone waits until the relay no longer lists id online.
func (c *client) waitGone(id string) {
	c.t.Helper()
	deadline := time.Now().Add(patience)
	for slices.Contains(c.peers(), id) {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %s still listed online", c.id, id)
		}
		time.Sleep(20 * time.Millisecond) // polling the relay, bounded by patience
	}
}

// waitPeers waits until the relay lists every one of ids online.
func (c *client) waitPeers(ids ...string) {
	c.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		got := strings.Join(c.peers(), ",")
		all := true
		for _, id := range ids {
			if !strings.Contains(","+got+",", ","+id+",") {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: peers %s, want %v among them", c.id, got, ids)
		}
		time.Sleep(20 * time.Millisecond) // polling the relay, bounded by patience
	}
}

// closeCode waits for the relay to close the connection.
func (c *client) closeCode() websocket.StatusCode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for {
		if _, _, err := c.ws.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// legacyClient speaks the older relay protocol on /.
type legacyClient struct {
	t  testing.TB
	ws *websocket.Conn
	id string
}

func connectLegacy(t testing.TB, url, id string) *legacyClient {
	t.Helper()
	c := &legacyClient{t: t, ws: dial(t, url, "/"), id: id}
	c.write(map[string]any{"type": "register", "clientId": id, "meta": map[string]any{"host": "old-box", "pid": 7}})
	c.next("registered")
	return c
}

func (c *legacyClient) write(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("legacy %s: write: %v", c.id, err)
	}
}

// next reads until a frame of type typ arrives, skipping presence.
func (c *legacyClient) next(typ string) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			c.t.Fatalf("legacy %s: read: %v", c.id, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("legacy %s: %s: %v", c.id, b, err)
		}
		switch m["type"] {
		case typ:
			return m
		case "peer_joined", "peer_left":
			continue
		}
		c.t.Fatalf("legacy %s: got %v, want type %s", c.id, m, typ)
	}
}
