package cluster_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/wstest"
)

// patience bounds every wait for the relay (see wstest.Patience).
const patience = wstest.Patience

// client is a protocol v1 client of one relayd node.
type client struct {
	t  testing.TB
	ws *websocket.Conn
	id string
}

func dial(t testing.TB, url, path string) *websocket.Conn {
	t.Helper()
	return wstest.Dial(t, url+path, nil)
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
	wstest.Send(c.t, c.id, c.ws, f)
}

func (c *client) read(timeout time.Duration) (protocol.Frame, error) {
	return wstest.Read(c.ws, timeout)
}

// expect reads frames, skipping presence and the relay's acks, until one of
// type T arrives.
func expect[T protocol.Frame](c *client) T {
	c.t.Helper()
	return wstest.Expect[T](c.t, c.id, c.ws, isAck)
}

func isAck(f protocol.Frame) bool {
	_, ok := f.(*protocol.Ack)
	return ok
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
	testkit.WaitFor(c.t, patience, c.id+" to see "+id+" offline", func() bool { return !slices.Contains(c.peers(), id) })
}

// waitPeers waits until the relay lists every one of ids online.
func (c *client) waitPeers(ids ...string) {
	c.t.Helper()
	testkit.WaitFor(c.t, patience, fmt.Sprintf("%s to see %v online", c.id, ids), func() bool {
		online := c.peers()
		for _, id := range ids {
			if !slices.Contains(online, id) {
				return false
			}
		}
		return true
	})
}

// closeCode waits for the relay to close the connection.
func (c *client) closeCode() websocket.StatusCode {
	c.t.Helper()
	code, _ := wstest.CloseStatus(c.t, c.id, c.ws)
	return code
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
	wstest.WriteJSON(c.t, "legacy "+c.id, c.ws, v)
}

// next reads until a frame of type typ arrives, skipping presence.
func (c *legacyClient) next(typ string) map[string]any {
	c.t.Helper()
	for {
		m := wstest.ReadJSON(c.t, "legacy "+c.id, c.ws)
		switch m["type"] {
		case typ:
			return m
		case "peer_joined", "peer_left":
			continue
		}
		c.t.Fatalf("legacy %s: got %v, want type %s", c.id, m, typ)
	}
}
