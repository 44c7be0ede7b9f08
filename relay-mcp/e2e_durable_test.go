package main

import (
	"strings"
	"testing"
	"time"
)

// The durability issue's newcomer story, end to end with the real binaries:
// stop a peer, send it three messages, kill -9 the relay, start everything
// again, and the peer's relay_receive shows all three, in order, once.
func TestE2EStoppedPeerGetsMailAfterRelayKill9(t *testing.T) {
	data := t.TempDir()
	r := startRelay(t, "127.0.0.1:0", data)
	home := t.TempDir()
	a := spawnAgent(t, r.url(), "CC-1", home)
	b := spawnAgent(t, r.url(), "CC-2", home)
	a.waitState(t, "connected")
	b.waitState(t, "connected")

	b.cs.Close() // the peer's agent quits
	poll(t, "CC-2 offline", 10*time.Second, func() bool {
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

	r.kill() // kill -9: no shutdown, no flush
	startRelay(t, r.addr, data)
	b = spawnAgent(t, r.url(), "CC-2", home)
	got := b.bodies(t, len(want))
	time.Sleep(300 * time.Millisecond) // a duplicate would show up now
	if txt, _ := b.call(t, "relay_receive", nil); !strings.HasPrefix(txt, "No unread") {
		got = append(got, "EXTRA: "+txt)
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("CC-2 read %q, want %q", got, want)
	}
	a.waitState(t, "connected") // the sender came back on its own
}
