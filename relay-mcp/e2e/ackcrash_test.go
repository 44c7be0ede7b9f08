package e2e

import (
	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// relay-mcp killed with SIGKILL after storing mail and before the relay
// heard its ack. The relay keeps what was not acked, so the mail is never
// only in the inbox's page cache:
//
//   - process crash: the inbox's log survives (the kernel holds the
//     writes), its resume point covers both messages, and the restarted
//     relay-mcp shows each once — the one read before the crash stays read.
//   - machine crash: writes no fsync covered may be lost (here the log is
//     cut back to its size before the two messages). The relay sends both
//     again at the hello and relay_receive shows each once, as unread.
func TestKill9BetweenReceiptAndAck(t *testing.T) {
	for _, lose := range []bool{false, true} {
		name := "process"
		if lose {
			name = "unsynced-writes-lost"
		}
		t.Run(name, func(t *testing.T) { kill9BeforeAck(t, lose) })
	}
}

func kill9BeforeAck(t *testing.T, loseUnsynced bool) {
	r := relaytest.Start(t)
	px := newFaultProxy(t, r.Addr)
	home := t.TempDir()
	a := spawnAgent(t, r.URL(), "SENDER", t.TempDir())
	b := spawnAgent(t, px.url, "CRASHER", home)
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	px.hold() // from now on the relay hears nothing from CRASHER

	log := filepath.Join(home, "inbox", "CRASHER", "messages.jsonl")
	before, _ := os.ReadFile(log)
	bodies := []string{"read before the crash", "unread at the crash"}
	for _, body := range bodies {
		if got := a.text(t, "relay_send", map[string]any{"to": "CRASHER", "message": body}); !strings.Contains(got, "CRASHER: delivered") {
			t.Fatalf("send: %s", got)
		}
		testkit.WaitFor(t, 10*time.Second, "CRASHER stores "+body, func() bool {
			data, _ := os.ReadFile(log)
			return strings.Contains(string(data), body)
		})
		if body == bodies[0] {
			if got := b.text(t, "relay_receive", nil); !strings.Contains(got, body) {
				t.Fatalf("before the crash: %s", got)
			}
		}
	}
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	b.cs.Close() // waits for the process to be gone
	wantBacklog, wantUnread := "backlog=0", bodies[1:]
	if loseUnsynced {
		if err := os.WriteFile(log, before, 0o600); err != nil {
			t.Fatal(err)
		}
		wantBacklog, wantUnread = "backlog=2", bodies
	}

	b2 := spawnAgent(t, r.URL(), "CRASHER", home)
	b2.waitState(t, "connected")
	// The welcome's backlog, as relay-mcp logs it (just after it says
	// connected).
	testkit.WaitFor(t, 10*time.Second, "the restarted relay-mcp to log its welcome", func() bool {
		return strings.Contains(b2.logs.String(), "connected to relay")
	})
	if logs := b2.logs.String(); !strings.Contains(logs, wantBacklog) {
		t.Fatalf("the relay's welcome did not say %s; restarted relay-mcp's log:\n%s", wantBacklog, tail(logs, 2000))
	}
	got := b2.text(t, "relay_receive", nil)
	for _, body := range bodies {
		want := 0
		for _, u := range wantUnread {
			if u == body {
				want = 1
			}
		}
		if n := strings.Count(got, body); n != want {
			t.Fatalf("after the restart, relay_receive showed %q %d times, want %d:\n%s", body, n, want, got)
		}
	}
	if got := b2.text(t, "relay_receive", nil); !strings.HasPrefix(got, "No unread") {
		t.Fatalf("a second relay_receive showed:\n%s", got)
	}
	all := b2.text(t, "relay_receive", map[string]any{"include_read": true})
	for _, body := range bodies {
		if n := strings.Count(all, body); n != 1 {
			t.Fatalf("the inbox holds %q %d times:\n%s", body, n, all)
		}
	}
}
