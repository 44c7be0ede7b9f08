package e2e

import (
	"fmt"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"strings"
	"testing"
)

// Two agents thanking each other through relay_send, against relayd with
// its default limits: from the 20th message of their exchange relay_send's
// result carries the loop nudge, in its text (what the model reads) and in
// its structured content (for programs), and every message is still sent.
func TestE2ELoopNudge(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	a, b := spawnAgent(t, r.URL(), "CC-1", home), spawnAgent(t, r.URL(), "CC-2", home)
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	last := ""
	for k := range 21 {
		from, to := a, "CC-2"
		if k%2 == 1 {
			from, to = b, "CC-1"
		}
		args := map[string]any{"to": to, "message": fmt.Sprint("thanks again ", k)}
		if last != "" {
			args["reply_to"] = last
		}
		text, sc := from.call(t, "relay_send", args)
		if !strings.HasPrefix(text, "Sent ") {
			t.Fatalf("message %d: %s", k, text)
		}
		last, _ = sc["id"].(string)
		warning, _ := sc["warning"].(string)
		if k < 19 {
			if warning != "" || strings.Contains(text, "Loop?") {
				t.Fatalf("message %d nudged early: %s", k, text)
			}
			continue
		}
		for _, s := range []string{text, warning} {
			if !strings.Contains(s, "Loop? ") || !strings.Contains(s, "stop replying") || !strings.Contains(s, "20 messages") {
				t.Fatalf("message %d: %q lacks the loop nudge", k, s)
			}
		}
	}
}
