package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/scriptedapi"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// installHooks writes the hooks `relay-mcp install claude --hooks --write`
// writes into the session's ~/.claude/settings.json.
func (c *ccSession) installHooks() {
	c.t.Helper()
	path := filepath.Join(c.home, ".claude", "settings.json")
	relayCLI(c.t, nil, "install", "claude", "--hooks", "--write", "--settings", path, "--command", bins.relayMCP)
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), "--wake Stop") {
		c.t.Fatalf("install claude --hooks wrote no wake listener: %v\n%s", err, b)
	}
}

// (a) CC-1's model sends; CC-2, idle in a stream-json session with the
// installed hooks, is woken and its next request holds the message text.
// (c) After the woken turn ends with nothing new, no further wake comes
// within 10 s.
func TestClaudeIdleSessionIsWoken(t *testing.T) {
	claudeBin(t)
	r := relaytest.Start(t)
	api := startAPI(t)
	cc2 := newCC(t, api, r, "CC-2", t.TempDir())
	cc2.installHooks()
	s := cc2.startStream()
	s.say("wait for CC-1's findings")
	s.waitResults(1, 90*time.Second)
	idle := len(api.Requests("CC-2"))

	cc1 := newCC(t, api, r, "CC-1", t.TempDir())
	const finding = "the bug is in auth.js line 42"
	api.Script("CC-1", toolThenText("mcp__relay__relay_send", map[string]any{"to": "CC-2", "message": finding}, "sent"))
	cc1.runP("tell CC-2 where the bug is", 90*time.Second)
	reqs := api.Requests("CC-1")
	if got := reqs[len(reqs)-1].LastUserText(); !strings.Contains(got, "CC-2: delivered") {
		t.Fatalf("CC-1's send: %s", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	woken, err := api.WaitRequest(ctx, "CC-2", idle)
	if err != nil {
		t.Fatalf("idle CC-2 was not woken: %v", err)
	}
	last := woken.LastUserText()
	if !strings.Contains(last, finding) || !strings.Contains(last, "from CC-1") || !strings.Contains(last, "data from peers") {
		t.Fatalf("the woken request's last user message does not hold the mail as peer data:\n%s", last)
	}
	s.waitResults(2, 60*time.Second)

	// (c) nothing new: no further wake.
	n := len(api.Requests("CC-2"))
	time.Sleep(10 * time.Second) // the claim is "nothing within 10 s": it must be waited out
	if got := api.Requests("CC-2"); len(got) != n {
		t.Fatalf("CC-2 was woken again with nothing new; last user message:\n%s", got[len(got)-1].LastUserText())
	}
}

// (b) CC-2, restarted while three messages were queued for it at the
// relay, has all three in its first request.
func TestClaudeQueuedMailAtFirstPrompt(t *testing.T) {
	claudeBin(t)
	r := relaytest.Start(t)
	api := startAPI(t)
	rh := t.TempDir()
	cc2 := newCC(t, api, r, "CC-2", rh)
	cc2.installHooks()
	cc2.runP("hello", 90*time.Second) // known to the relay, then away
	first := len(api.Requests("CC-2"))

	peer := spawnAgent(t, r.URL(), "CC-1", t.TempDir())
	peer.waitState(t, "connected")
	bodies := []string{"finding 1: auth.js line 42", "finding 2: the token is never refreshed", "finding 3: tests pass on fix-auth"}
	for _, b := range bodies {
		if got := peer.text(t, "relay_send", map[string]any{"to": "CC-2", "message": b}); !strings.Contains(got, "CC-2: queued") {
			t.Fatalf("send to the absent CC-2: %s", got)
		}
	}
	cc2.runP("anything new?", 90*time.Second)
	req := api.Requests("CC-2")[first]
	all := req.AllText()
	for _, b := range bodies {
		if !strings.Contains(all, b) {
			t.Errorf("the first request after the restart lacks %q:\n%s", b, tail(all, 3000))
		}
	}
}

// A wake → reply → wake exchange between two idle sessions whose models
// answer every message is bounded: with RELAY_WAKE_MAX=2 each session is
// woken twice in a row without a prompt from its person, then the mail
// waits for the next prompt.
func TestClaudeWakeCycleBounded(t *testing.T) {
	claudeBin(t)
	r := relaytest.Start(t)
	api := startAPI(t)
	// Each model answers every relay message it is shown with one more.
	answer := func(self, other string) scriptedapi.Script {
		n := 0
		return func(req *scriptedapi.Request) scriptedapi.Reply {
			last := req.LastUser()
			for _, b := range last.Content {
				if b.Type == "tool_result" {
					return scriptedapi.Reply{Text: "sent"}
				}
			}
			text := req.LastUserText()
			if strings.Contains(text, "mail for you") || strings.Contains(text, "start the exchange") {
				n++
				return scriptedapi.Reply{ToolUses: []scriptedapi.ToolUse{{Name: "mcp__relay__relay_send",
					Input: map[string]any{"to": other, "message": fmt.Sprintf("%s says %d", self, n)}}}}
			}
			return scriptedapi.Reply{Text: "ok"}
		}
	}
	var streams []*ccStream
	for _, id := range []string{"CC-2", "CC-1"} {
		other := map[string]string{"CC-1": "CC-2", "CC-2": "CC-1"}[id]
		api.Script(id, answer(id, other))
		c := newCC(t, api, r, id, t.TempDir())
		c.env = append(c.env, "RELAY_WAKE_MAX=2")
		c.installHooks()
		s := c.startStream()
		streams = append(streams, s)
	}
	streams[0].say("you may be asked things")
	streams[0].waitResults(1, 90*time.Second)
	streams[1].say("start the exchange with CC-2")

	woken := func(id string) int {
		n := 0
		for _, r := range api.Requests(id) {
			if strings.Contains(r.LastUserText(), "mail for you") {
				n++
			}
		}
		return n
	}
	// Each is woken twice (bounded at 120 s), then no request from either
	// session comes for 6 s: the exchange has stopped.
	testkit.WaitFor(t, 120*time.Second, "two wakes of each session", func() bool { return woken("CC-1") >= 2 && woken("CC-2") >= 2 })
	deadline := time.Now().Add(60 * time.Second)
	last, quietSince := -1, time.Now()
	for {
		n := len(api.Requests("CC-1")) + len(api.Requests("CC-2"))
		if n != last {
			last, quietSince = n, time.Now()
		}
		if time.Since(quietSince) > 6*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exchange did not stop: CC-1 woken %d times, CC-2 %d", woken("CC-1"), woken("CC-2"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if a, b := woken("CC-1"), woken("CC-2"); a != 2 || b != 2 {
		t.Fatalf("woken CC-1 %d, CC-2 %d times; want 2 each (RELAY_WAKE_MAX=2)", a, b)
	}
	// The last answer waits, unread, for CC-2's person.
	in, err := inbox.Open(filepath.Join(streams[0].c.relayHome, "inbox", "CC-2"), inbox.Options{LockWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if un := in.List(inbox.Query{}); len(un) != 1 || un[0].Body != "CC-1 says 3" {
		t.Fatalf("CC-2's unread mail: %+v", un)
	}
}
