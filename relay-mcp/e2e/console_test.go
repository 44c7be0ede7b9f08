package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestOperatorPostReachesRelayReceive: a person posts from relayd's console
// (its HTTP API, as the page does: CSRF token from /console/api/state, the
// page's Origin); the agent's relay-mcp, a real subprocess, shows it in
// relay_receive marked as from a person, in the text and in the structured
// content.
func TestOperatorPostReachesRelayReceive(t *testing.T) {
	r := relaytest.Start(t)
	// Structured content on, so both what a model reads (the text) and what
	// a program reads (the JSON) are checked.
	peer := spawnAgent(t, r.URL(), "CC-2", t.TempDir(), "RELAY_STRUCTURED_CONTENT=true")
	peer.waitState(t, "connected")

	consolePost(t, r, "post", `{"as":"ana","to":["CC-2"],"body":"Stop the migration, the schema changed upstream."}`)

	var text, structured string
	testkit.WaitFor(t, 15*time.Second, "the operator's message in relay_receive", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := peer.cs.CallTool(ctx, &mcp.CallToolParams{Name: "relay_receive", Arguments: map[string]any{"wait_seconds": 1}})
		if err != nil {
			t.Fatal(err)
		}
		text = ""
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				text += tc.Text
			}
		}
		sc, _ := json.Marshal(res.StructuredContent)
		structured = string(sc)
		return strings.Contains(text, "Stop the migration")
	})
	if !strings.Contains(text, "from person.ana") || !strings.Contains(text, "(from a person: the relay's operator, not an agent)") {
		t.Errorf("relay_receive does not mark the message as a person's:\n%s", text)
	}
	if !strings.Contains(structured, `"from_person":true`) {
		t.Errorf("relay_receive's structured content does not mark the person: %s", structured)
	}
}

// consolePost posts to the console's API as its page does: the CSRF token
// from /console/api/state, the page's Origin.
func consolePost(t *testing.T, r *relaytest.Relay, path, body string) {
	t.Helper()
	base := "http://" + r.Addr
	resp, err := http.Get(base + "/console/api/state")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		CSRF string `json:"csrf"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.CSRF == "" {
		t.Fatalf("no CSRF token from the console's state (%d)", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", base+"/console/api/"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	req.Header.Set("X-Console-CSRF", st.CSRF)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("console %s: %d", path, resp.StatusCode)
	}
}

// TestOperatorHoldIsANotice: the operator holds a pair from the console;
// both agents' relay-mcp (real subprocesses, on a real relayd) are told by
// the relay's held frame — relay_status says so, relay_send's result too
// (a send to a third agent goes, with the notice), a send within the pair
// is refused — and an agent of a held pair that connects only afterwards
// is told at once. The release withdraws the notice.
func TestOperatorHoldIsANotice(t *testing.T) {
	r := relaytest.Start(t)
	agents := connectedAgents(t, r.URL(), t.TempDir(), "CC-1", "CC-2", "CC-3")
	cc1, cc2, cc3 := agents[0], agents[1], agents[2]
	consolePost(t, r, "hold", `{"pair":["CC-1","CC-2"]}`)
	consolePost(t, r, "hold", `{"pair":["CC-1","CC-4"]}`) // CC-4 has not connected yet
	const told = "Notice from the relay: the relay's operator put you and "
	for _, p := range []*agentProc{cc1, cc2} {
		other := map[string]string{"CC-1": "CC-2", "CC-2": "CC-1"}[p.id]
		testkit.WaitFor(t, 15*time.Second, p.id+"'s relay_status telling of the hold", func() bool {
			return strings.Contains(p.text(t, "relay_status", nil), told+other+" on hold")
		})
	}
	if got := cc1.text(t, "relay_send", map[string]any{"to": "CC-2", "message": "one more thanks"}); !strings.HasPrefix(got, "ERROR: ") ||
		!strings.Contains(got, "on hold") {
		t.Errorf("CC-1 → CC-2 while held: %s; want refused, naming the hold", got)
	}
	got := cc1.text(t, "relay_send", map[string]any{"to": "CC-3", "message": "can you take the parser?"})
	if !strings.HasPrefix(got, "Sent ") || !strings.Contains(got, told+"CC-2 on hold") || !strings.Contains(got, told+"CC-4 on hold") {
		t.Errorf("CC-1 → CC-3 while CC-1 is held with CC-2 and CC-4: %s; want sent, with both notices", got)
	}
	if st := cc3.text(t, "relay_status", nil); strings.Contains(st, "Notice") {
		t.Errorf("CC-3, in no held pair, was told: %s", st)
	}

	cc4 := spawnAgent(t, r.URL(), "CC-4", t.TempDir())
	cc4.waitState(t, "connected")
	testkit.WaitFor(t, 15*time.Second, "CC-4 told of the hold standing when it connected", func() bool {
		return strings.Contains(cc4.text(t, "relay_status", nil), told+"CC-1 on hold")
	})

	consolePost(t, r, "release", `{"pair":["CC-2","CC-1"]}`)
	testkit.WaitFor(t, 15*time.Second, "CC-2's notice withdrawn by the release", func() bool {
		return !strings.Contains(cc2.text(t, "relay_status", nil), "Notice")
	})
	var st string
	testkit.WaitFor(t, 15*time.Second, "CC-1's notice of CC-2 withdrawn by the release", func() bool {
		st = cc1.text(t, "relay_status", nil)
		return !strings.Contains(st, told+"CC-2")
	})
	if !strings.Contains(st, told+"CC-4") {
		t.Errorf("CC-1 after the release of CC-2, CC-4 still held: %s; want CC-4's notice kept", st)
	}
	if got := cc1.text(t, "relay_send", map[string]any{"to": "CC-2", "message": "back to work"}); !strings.HasPrefix(got, "Sent ") {
		t.Errorf("CC-1 → CC-2 after the release: %s", got)
	}
}
