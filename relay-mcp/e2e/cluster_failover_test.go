package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// startCluster runs three relayd processes that carry their NATS nodes
// (--cluster embedded, routed to each other: three replicas) and returns
// once all three listen.
func startCluster(t *testing.T) []*relaytest.Relay {
	t.Helper()
	routes := make([]string, 3)
	for i := range routes {
		routes[i] = testkit.RefusedAddr(t)
	}
	var args [][]string
	for i := range 3 {
		args = append(args, []string{"--cluster", "embedded", "--nats-name", fmt.Sprintf("n%d", i+1),
			"--nats-cluster-listen", routes[i], "--nats-routes", "nats-route://" + strings.Join(routes, ",nats-route://"),
			"--cluster-node", fmt.Sprintf("relay%d", i+1)})
	}
	return relaytest.StartProcesses(t, args...)
}

// relay-mcp with a cluster's three nodes in RELAY_URL: when the node it is
// connected to is killed (-9, with the NATS node inside it), it resumes on
// the next node from its seq — what was sent to it meanwhile arrives once
// — and a send made while it moved is stored once. In a cluster every node
// serves the same mailboxes: the seq the inbox holds and the refs of the
// outbox mean the same on every node.
func TestE2EFailoverInCluster(t *testing.T) {
	nodes := startCluster(t)
	list := nodes[0].URL() + "," + nodes[1].URL() + "," + nodes[2].URL()
	home := t.TempDir()
	a := spawnAgent(t, list, "A", home)
	b := spawnAgent(t, nodes[2].URL(), "B", home)
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	if _, sc := a.call(t, "relay_status", nil); sc["relay_url"] != nodes[0].URL()+"/v1/ws" {
		t.Fatalf("A on %v, want the first node", sc["relay_url"])
	}
	if txt, _ := a.call(t, "relay_send", map[string]any{"to": "B", "message": "a1"}); !strings.Contains(txt, "B: delivered") {
		t.Fatalf("A on node 1 to B on node 3: %s", txt)
	}
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "b1"})
	if got := strings.Join(a.bodies(t, 1), ","); got != "b1" {
		t.Fatalf("A got %q", got)
	}

	nodes[0].Kill(t) // kill -9 of A's node and of the NATS node inside it
	killed := time.Now()
	// While the cluster elects new stream leaders the nodes left may not
	// store for a moment: the send is then queued and retried, not lost.
	if txt, _ := b.call(t, "relay_send", map[string]any{"to": "A", "message": "b2 while A moves"}); !strings.Contains(txt, "A: queued") && !strings.Contains(txt, "A: delivered") && !strings.Contains(txt, "Queued") {
		t.Fatalf("B's send while A moves: %s", txt)
	}
	txt, _ := a.call(t, "relay_send", map[string]any{"to": "B", "message": "a2 while moving"})
	if !strings.Contains(txt, "B: delivered") && !strings.Contains(txt, "Queued") {
		t.Fatalf("send while moving: %s", txt)
	}
	// On the next node, or the one after when the next one's hello waited
	// out the leader election: any node left serves A's mailbox.
	testkit.WaitFor(t, 60*time.Second, "A on a node left", func() bool {
		_, sc := a.call(t, "relay_status", nil)
		return sc["state"] == "connected" && (sc["relay_url"] == nodes[1].URL()+"/v1/ws" || sc["relay_url"] == nodes[2].URL()+"/v1/ws")
	})
	moved := time.Since(killed)
	a.call(t, "relay_send", map[string]any{"to": "B", "message": "a3"})
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "b3"})
	if got := strings.Join(b.bodies(t, 3), ","); got != "a1,a2 while moving,a3" {
		t.Fatalf("B got %q, want each of A's sends once, in order", got)
	}
	if got := strings.Join(a.bodies(t, 2), ","); got != "b2 while A moves,b3" {
		t.Fatalf("A got %q after moving, want what was sent meanwhile and after, once each", got)
	}
	t.Logf("A connected to the second node %s after the kill, had the mail sent meanwhile %s after it",
		moved.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive right behind
	for _, x := range []*agentProc{a, b} {
		if txt, _ := x.call(t, "relay_receive", nil); !strings.HasPrefix(txt, "No unread") {
			t.Fatalf("%s got more: %s", x.id, txt)
		}
	}
}
