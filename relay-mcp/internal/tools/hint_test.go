package tools

import (
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
)

// Offline with a list of relays, the hint says relay-mcp goes through the
// list and which failed last; with one relay it is as it always was.
func TestOfflineHintWithAList(t *testing.T) {
	refused := "relay not reachable at ws://b:9999/v1/ws (connection refused) — is relayd running? start it with `relayd`"
	got := offlineHint(link.Status{State: link.StateReconnecting, URL: "ws://b:9999/v1/ws",
		URLs: []string{"ws://a:9999/v1/ws", "ws://b:9999/v1/ws"}, LastError: refused})
	if got != "relay-mcp tries the 2 relays of RELAY_URL in turn; the last failed: "+refused {
		t.Errorf("list: %q", got)
	}
	got = offlineHint(link.Status{State: link.StateReconnecting, URL: "ws://a:9999/v1/ws", LastError: "relay closed the connection (1001 going away)"})
	if !strings.HasPrefix(got, "relay closed the connection (1001 going away) — is relayd running?") {
		t.Errorf("one relay: %q", got)
	}
}
