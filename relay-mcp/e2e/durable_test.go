package e2e

import (
	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"strings"
	"testing"
	"time"
)

// The durability issue's newcomer story, end to end with the real binaries:
// stop a peer, send it three messages, kill -9 the relay, start everything
// again, and the peer's relay_receive shows all three, in order, once.
func TestE2EStoppedPeerGetsMailAfterRelayKill9(t *testing.T) {
	data := t.TempDir()
	r := relaytest.StartProcess(t, "--data-dir", data)
	home := t.TempDir()
	a, b := connectedPair(t, r.URL(), home, "CC-1", "CC-2")

	b.cs.Close() // the peer's agent quits
	testkit.WaitFor(t, 10*time.Second, "CC-2 offline", func() bool {
		txt, _ := a.call(t, "relay_peers", nil)
		return !strings.Contains(txt, "CC-2")
	})
	want := []string{"one: the build is green", "two: I took the auth task", "three: review my branch"}
	for _, body := range want {
		txt, _ := a.call(t, "relay_send", map[string]any{"to": "CC-2", "message": body})
		if !strings.Contains(txt, "CC-2: queued") {
			t.Fatalf("send to a stopped peer: %s", txt)
		}
	}

	r.Kill(t) // kill -9: no shutdown, no flush
	relaytest.Start(t, "--listen", r.Addr, "--data-dir", data)
	b = spawnAgent(t, r.URL(), "CC-2", home)
	exactlyOnce(t, b, want...)
	a.waitState(t, "connected") // the sender came back on its own
}
