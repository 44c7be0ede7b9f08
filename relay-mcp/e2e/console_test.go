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
	req, _ := http.NewRequest("POST", base+"/console/api/post",
		strings.NewReader(`{"as":"ana","to":["CC-2"],"body":"Stop the migration, the schema changed upstream."}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	req.Header.Set("X-Console-CSRF", st.CSRF)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("operator post: %d", resp.StatusCode)
	}

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
