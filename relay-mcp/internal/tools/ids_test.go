package tools

import (
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/relaytest"
)

// Ids a model passes to the tools are checked before they are used: a bad
// one gets an error result saying what an id looks like, and nothing is
// sent or stored.
func TestToolsRefuseBadIDs(t *testing.T) {
	r := relaytest.New(t)
	a, b := newAgent(t, r.URL(), "A"), newAgent(t, r.URL(), "B")
	waitConnected(t, a, b)
	for _, tc := range []struct {
		tool string
		args map[string]any
		says string
	}{
		{"relay_send", map[string]any{"to": "../B", "message": "x"}, "bad recipient"},
		{"relay_send", map[string]any{"to": "B\x00", "message": "x"}, "bad recipient"},
		{"relay_send", map[string]any{"to": "B, C D", "message": "x"}, "bad recipient"},
		{"relay_send", map[string]any{"to": strings.Repeat("B", 65), "message": "x"}, "limit is 64"},
		{"relay_send", map[string]any{"to": "B", "message": "x", "reply_to": "m/1"}, "reply_to"},
		{"relay_receive", map[string]any{"from": "B\x00"}, "`from` is not a peer id"},
		{"relay_receive", map[string]any{"from": "../../B"}, "`from` is not a peer id"},
		{"relay_receive", map[string]any{"id": "<script>"}, "`id` is not a message id"},
		{"relay_receive", map[string]any{"reply_to": "../x", "wait_seconds": 1}, "`reply_to` is not a message id"},
	} {
		txt, _, isErr := a.call(t, tc.tool, tc.args)
		if !isErr || !strings.Contains(txt, tc.says) {
			t.Errorf("%s %v: error=%v %q, want an error saying %q", tc.tool, tc.args, isErr, txt, tc.says)
		}
	}
	// Nothing reached B: a good message is the first thing it holds.
	if txt, _, isErr := a.call(t, "relay_send", map[string]any{"to": "B", "message": "the only one"}); isErr {
		t.Fatal(txt)
	}
	if n := r.Delivered("B", "x"); n != 0 {
		t.Fatalf("B holds %d of the refused messages", n)
	}
	if n := r.Delivered("B", "the only one"); n != 1 {
		t.Fatalf("B holds %d copies of the good message", n)
	}
}
