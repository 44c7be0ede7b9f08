package cluster_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/cluster/natstest"
	"github.com/claude-relay/claude-relay/relayd/internal/loadgen"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

func TestMain(m *testing.M) {
	relaytest.Main() // serves as relayd when a test runs it as a process
	os.Exit(m.Run())
}

// nodeArgs are relayd's flags for node i of a cluster on nats: it dials
// NATS node i first.
func nodeArgs(nats *natstest.Cluster, i int) []string {
	return nodeArgsOn(strings.Split(nats.URLs(), ","), i, fmt.Sprintf("r%d", i+1))
}

// nodeArgsOn are relayd's flags for a node named name on the NATS servers
// at urls, dialling urls[i] first (none: the flags for --cluster embedded
// add), with the limits meant for one agent gone wrong out of the way.
func nodeArgsOn(urls []string, i int, name string) []string {
	args := []string{"--cluster-node", name, "--client-limit", "0", "--pair-limit", "0", "--global-limit", "0", "--loop-warn", "0"}
	if len(urls) == 0 {
		return args
	}
	urls = append(urls[i%len(urls):], urls[:i%len(urls)]...)
	return append([]string{"--cluster", strings.Join(urls, ",")}, args...)
}

// startNodes runs n relayd nodes in this process on a 3-node NATS cluster.
func startNodes(t *testing.T, n int) (*natstest.Cluster, []*relaytest.Relay) {
	t.Helper()
	nats := natstest.Start(t, 3)
	var nodes []*relaytest.Relay
	for i := range n {
		nodes = append(nodes, relaytest.Start(t, nodeArgs(nats, i)...))
	}
	return nats, nodes
}

// Agents on three different nodes, and a client of the older protocol on
// a fourth connection, exchange direct and broadcast mail as on one relay.
func TestCrossNodeDirectAndBroadcast(t *testing.T) {
	_, r := startNodes(t, 3)
	a, _ := connect(t, r[0].URL(), "A", 0)
	b, _ := connect(t, r[1].URL(), "B", 0)
	c, _ := connect(t, r[2].URL(), "C", 0)
	old := connectLegacy(t, r[1].URL(), "OLD")
	a.waitPeers("A", "B", "C", "OLD")

	acc := a.sendTo("1", "hello B", "B")
	if len(acc.Recipients) != 1 || acc.Recipients[0].Status != protocol.StatusDelivered {
		t.Fatalf("accepted %+v: want B delivered (online on another node)", acc)
	}
	m := expect[*protocol.Message](b)
	if m.From != "A" || m.Body != "hello B" || m.ID != acc.ID {
		t.Fatalf("B got %+v", m)
	}
	// B holds it and shows it to its model on node 2; A's receipt on
	// node 1 says read.
	b.send(&protocol.Ack{Upto: m.Seq})
	b.send(&protocol.Read{IDs: []string{m.ID}})
	// The relay records a read beside the connection: A asks until it
	// shows, as relay_status would.
	testkit.WaitFor(t, patience, "A's receipt for its message to B to say read", func() bool {
		a.send(&protocol.Receipts{Ref: "r", IDs: []string{acc.ID}})
		r := expect[*protocol.Receipts](a).Receipts
		return len(r) == 1 && r[0].To == "B" && r[0].State == protocol.ReceiptRead
	})

	acc = a.sendTo("2", "hello all", "*")
	var to []string
	for _, o := range acc.Recipients {
		to = append(to, o.ID+"="+o.Status)
	}
	slices.Sort(to)
	if got := strings.Join(to, " "); got != "B=delivered C=delivered OLD=delivered" {
		t.Fatalf("broadcast went to %s", got)
	}
	for _, x := range []*client{b, c} {
		if m := expect[*protocol.Message](x); m.Body != "hello all" || m.ID != acc.ID {
			t.Fatalf("%s got %+v", x.id, m)
		}
	}
	if m := old.next("message"); m["content"] != "hello all" || m["from"] != "A" {
		t.Fatalf("OLD got %v", m)
	}

	old.write(map[string]any{"type": "message", "to": "C", "content": "from the old protocol"})
	if m := expect[*protocol.Message](c); m.From != "OLD" || m.Body != "from the old protocol" {
		t.Fatalf("C got %+v", m)
	}
	reply := c.sendTo("3", "hi A", "A")
	if m := expect[*protocol.Message](a); m.From != "C" || m.ID != reply.ID {
		t.Fatalf("A got %+v", m)
	}

	// History on B's node shows what A sent it from another node.
	b.send(&protocol.History{Ref: "h", With: "A"})
	h := expect[*protocol.History](b)
	var bodies []string
	for _, m := range h.Messages {
		bodies = append(bodies, m.Body)
	}
	if got := strings.Join(bodies, "|"); got != "hello B|hello all" {
		t.Fatalf("B's history with A: %s", got)
	}
}

// A second connection for an id on another node takes it over: the first
// is closed with 4409 and the second keeps getting the id's mail.
func TestTakeoverAcrossNodes(t *testing.T) {
	_, r := startNodes(t, 3)
	first, _ := connect(t, r[0].URL(), "A", 0)
	b, _ := connect(t, r[2].URL(), "B", 0)
	b.waitPeers("A")
	second, w := connect(t, r[1].URL(), "A", 0)
	if code := first.closeCode(); code != protocol.CloseReplaced {
		t.Fatalf("first connection closed with %d, want %d", code, protocol.CloseReplaced)
	}
	if w.Replaced == nil || w.Replaced.Host != "host-A" {
		t.Fatalf("welcome %+v: want replaced naming the first connection's host", w)
	}
	acc := b.sendTo("1", "to the second", "A")
	if m := expect[*protocol.Message](second); m.ID != acc.ID {
		t.Fatalf("second connection got %+v", m)
	}
	// The node that lost the id does not take it back: the second
	// connection is still the one online, listed once.
	if n := strings.Count(strings.Join(b.peers(), ","), "A"); n != 1 {
		t.Fatalf("peers list A %d times", n)
	}
	second.peers() // still answered: the connection is up

	// A one-shot tool acting as A on the third node, asking not to take
	// over, is refused while A is online on another node.
	tool := &client{t: t, ws: dial(t, r[2].URL(), "/v1/ws"), id: "A"}
	tool.send(&protocol.Hello{Proto: protocol.Version, ClientID: "A", NoTakeover: true})
	if e := expect[*protocol.ErrorFrame](tool); e.Code != protocol.CodeIDInUse {
		t.Fatalf("hello with no_takeover: %+v, want %s", e, protocol.CodeIDInUse)
	}
	if code := tool.closeCode(); code != protocol.CloseIDInUse {
		t.Fatalf("closed with %d, want %d", code, protocol.CloseIDInUse)
	}
	second.peers() // and A's connection is untouched
}

// An agent that read part of its mail on one node, went away while more
// came, and connected to another node resumes after the last seq it holds:
// it gets the rest, once each, and nothing it already had.
func TestAgentMovesToAnotherNode(t *testing.T) {
	_, r := startNodes(t, 3)
	sender, _ := connect(t, r[1].URL(), "S", 0)
	a, _ := connect(t, r[0].URL(), "A", 0)
	sender.waitPeers("A")
	var want []string
	for i := range 5 {
		want = append(want, sender.sendTo(fmt.Sprint(i), fmt.Sprint("m", i), "A").ID)
	}
	var held uint64
	for i := range 5 {
		if m := expect[*protocol.Message](a); m.ID != want[i] {
			t.Fatalf("A got %+v, want %s", m, want[i])
		} else {
			held = m.Seq
		}
	}
	a.send(&protocol.Ack{Upto: held})
	a.sessions() // answered after the ack is written
	a.ws.CloseNow()
	sender.waitGone("A")
	for i := 5; i < 10; i++ {
		acc := sender.sendTo(fmt.Sprint(i), fmt.Sprint("m", i), "A")
		if acc.Recipients[0].Status != protocol.StatusQueued {
			t.Fatalf("send to A while it is away: %+v, want queued", acc.Recipients)
		}
		want = append(want, acc.ID)
	}

	moved, w := connect(t, r[2].URL(), "A", held)
	if w.Backlog != 5 {
		t.Errorf("welcome on the new node: backlog %d, want 5", w.Backlog)
	}
	var got []string
	for range 5 {
		got = append(got, expect[*protocol.Message](moved).ID)
	}
	if !slices.Equal(got, want[5:]) {
		t.Fatalf("after moving A got %v, want %v", got, want[5:])
	}
	// Nothing more: a history request is answered next, not a message.
	moved.send(&protocol.History{Ref: "h"})
	if h := expect[*protocol.History](moved); len(h.Messages) != 10 {
		t.Fatalf("A's history on the new node holds %d messages, want 10", len(h.Messages))
	}
}

// relayd load measures across nodes: with PeerURL its second client is on
// another node, and every round trip crosses the cluster.
func TestLoadEchoAcrossNodes(t *testing.T) {
	_, r := startNodes(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
	defer cancel()
	rtts, err := loadgen.EchoOn(ctx, loadgen.Target{URL: r[0].URL(), PeerURL: r[1].URL()}, 20, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(rtts) != 20 {
		t.Fatalf("%d round trips, want 20", len(rtts))
	}
	res, err := loadgen.ThroughputOn(ctx, loadgen.Target{URL: r[0].URL(), PeerURL: r[1].URL()}, 2, 200, 100, 16)
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != 200 {
		t.Fatalf("receiver on the other node got %d messages, want 200", res.Messages)
	}
}

// Presence crosses nodes: an agent on node 1 is told when one connects on
// node 2, and when it sets a status line there.
func TestPresenceAcrossNodes(t *testing.T) {
	_, r := startNodes(t, 2)
	a, _ := connect(t, r[0].URL(), "A", 0)
	b, _ := connect(t, r[1].URL(), "B", 0)
	if p := nextPresence(a); p.Event != protocol.PresenceJoined || p.Peer.ID != "B" {
		t.Fatalf("A was told %+v, want B joined", p)
	}
	b.send(&protocol.Status{Ref: "st", Status: "running the tests"})
	expect[*protocol.Status](b)
	if p := nextPresence(a); p.Event != protocol.PresenceStatus || p.Peer.ID != "B" || p.Peer.Status != "running the tests" {
		t.Fatalf("A was told %+v, want B's new status", p)
	}
}

// nextPresence reads c's frames until a presence frame arrives.
func nextPresence(c *client) *protocol.Presence {
	c.t.Helper()
	for {
		f, err := c.read(patience)
		if err != nil {
			c.t.Fatalf("%s: read: %v", c.id, err)
		}
		if p, ok := f.(*protocol.Presence); ok {
			return p
		}
	}
}
