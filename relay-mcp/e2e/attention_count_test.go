package e2e

import (
	"fmt"
	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"strings"
	"testing"
	"time"
)

// relay_send tells the sender how much mail each online recipient has not
// read, this message included: the peer list comes back with the send
// (one round trip), and the relay answers it only once the send is stored.
func TestSendCountsItselfInTheRecipientsUnread(t *testing.T) {
	r := relaytest.Start(t)
	a := spawnAgent(t, r.URL(), "COUNTER-A", t.TempDir())
	b := spawnAgent(t, r.URL(), "COUNTER-B", t.TempDir())
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	for i := 1; i <= 5; i++ {
		got := a.text(t, "relay_send", map[string]any{"to": "COUNTER-B", "message": fmt.Sprint("note ", i)})
		if want := fmt.Sprintf("COUNTER-B has %d unread", i); !strings.Contains(got, want) {
			t.Fatalf("send %d: %q does not say %q", i, got, want)
		}
	}
	read := ""
	testkit.WaitFor(t, 10*time.Second, "COUNTER-B to read the five", func() bool {
		read += b.text(t, "relay_receive", map[string]any{"count": 10})
		return strings.Contains(read, "note 5")
	})
	got := a.text(t, "relay_send", map[string]any{"to": "COUNTER-B", "message": "after the read"})
	if !strings.Contains(got, "COUNTER-B has 1 unread, last read") || strings.Contains(got, "last read never") {
		t.Fatalf("after B read the five: %q", got)
	}
}
