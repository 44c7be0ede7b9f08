package server

import (
	"fmt"
	"testing"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/coder/websocket"
)

// A quiet connection (a script's send or peers) comes and goes without
// presence: the sessions online do not see it join or leave. A session
// that is not quiet is announced as before.
func TestQuietConnectionsAreNoNews(t *testing.T) {
	r := startRelay(t)
	a, _ := r.connect("CC-1", 0)
	for i := range 3 {
		q := r.dialRaw("/v1/ws", nil)
		q.send(&protocol.Hello{Proto: protocol.Version, ClientID: fmt.Sprint("cli-host-", i), Quiet: true, NoTakeover: true})
		expect[*protocol.Welcome](q)
		if i == 0 {
			q.ws.CloseNow() // a lost connection is no news either
			continue
		}
		q.ws.Close(websocket.StatusNormalClosure, "done")
	}
	a.send(&protocol.Peers{Ref: "p"})
	if f := a.next(); f.Type() != protocol.TypePeers {
		t.Fatalf("CC-1 got %T %+v before its peers answer: quiet connections were announced", f, f)
	}
	r.connect("CC-2", 0)
	if p := expect[*protocol.Presence](a); p.Event != protocol.PresenceJoined || p.Peer.ID != "CC-2" {
		t.Fatalf("presence = %+v", p)
	}
}
