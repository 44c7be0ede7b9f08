package e2e

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/scriptedapi"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// What the model reads: the exact tool_result block Claude Code puts in
// the next request for each tool and outcome, through the real CLI, is
// compared with a golden file (ids, times and ports normalised). One
// `claude -p` turn makes every call in order; the scripted model's side
// effects put the relay in the state each outcome needs.
func TestClaudeToolResults(t *testing.T) {
	claudeBin(t)
	// --max-queue 4: FULL is filled with four, and CC-1, which is sent four
	// in all, never reaches it however late its acks reach the relay (with
	// 2, the last of three sends in a row found CC-1 full now and then).
	r := relaytest.Start(t, "--max-body", "4096", "--max-queue", "4")
	rb := relaytest.Start(t, "--client-limit", "1/1h") // the rate-limited case
	api := startAPI(t)
	rh := t.TempDir()
	cli := func(args ...string) string {
		return relayCLI(t, []string{"RELAY_HOME=" + t.TempDir(), "RELAY_URL=" + r.URL()}, args...)
	}
	// Known to the relay and offline: CC-3 (its mailbox empty) and FULL
	// (its mailbox full: --max-queue 4).
	cli("send", "--as", "CC-3", "*", "hello")
	cli("send", "--as", "FULL", "*", "hello")
	for _, m := range []string{"one", "two", "three", "four"} {
		cli("send", "--as", "FILLER", "FULL", m)
	}
	peer := spawnAgent(t, r.URL(), "CC-2", t.TempDir())
	peer.waitState(t, "connected")

	cc := newCC(t, api, r, "CC-1", rh)
	// A second relay-mcp in the same session, on a relay that allows one
	// request an hour: its second send is rate limited.
	cc.addServer("relayb", rb.URL(), "CC-1b", t.TempDir())

	inboxHas := func(n int) {
		testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("%d message(s) in CC-1's inbox", n), func() bool {
			in, err := inbox.Open(filepath.Join(rh, "inbox", "CC-1"), inbox.Options{LockWait: 50 * time.Millisecond})
			if err != nil {
				return false
			}
			defer in.Close()
			return len(in.List(inbox.Query{IncludeRead: true})) >= n
		})
	}
	type step struct {
		golden string
		tool   string
		input  map[string]any
		before func() // side effect before the model makes the call
	}
	steps := []step{
		{golden: "receive_0", tool: "relay_receive", input: map[string]any{}},
		{golden: "send_delivered", tool: "relay_send", input: map[string]any{"to": "CC-2", "message": "the bug is in auth.js line 42"}},
		{golden: "send_queued", tool: "relay_send", input: map[string]any{"to": "CC-3", "message": "please rebase when you are back"}},
		{golden: "send_unknown", tool: "relay_send", input: map[string]any{"to": "NOBODY", "message": "hello?"}},
		{golden: "send_mailbox_full", tool: "relay_send", input: map[string]any{"to": "FULL", "message": "one more"}},
		{golden: "send_too_large", tool: "relay_send", input: map[string]any{"to": "CC-2", "message": strings.Repeat("x", 5000)}},
		{golden: "receive_1", tool: "relay_receive", input: map[string]any{}, before: func() {
			peer.text(t, "relay_send", map[string]any{"to": "CC-1", "message": "thanks, looking at auth.js now"})
			inboxHas(1)
		}},
		{golden: "receive_many", tool: "relay_receive", input: map[string]any{}, before: func() {
			for _, m := range []string{"found it: a nil check", "fix pushed to branch fix-auth", "tests pass"} {
				t.Logf("send %q: %s", m, peer.text(t, "relay_send", map[string]any{"to": "CC-1", "message": m, "thread": "auth"}))
			}
			inboxHas(4)
		}},
		{golden: "", tool: "relayb:relay_send", input: map[string]any{"to": "CC-1", "message": "first"}},
		{golden: "send_rate_limited", tool: "relayb:relay_send", input: map[string]any{"to": "CC-1", "message": "second"}},
		{golden: "send_relay_down", tool: "relay_send", input: map[string]any{"to": "CC-2", "message": "are you there?"}, before: func() {
			r.Stop()
			// CC-1's link sees its socket close as CC-2's does.
			testkit.WaitFor(t, 10*time.Second, "CC-2 sees the relay gone", func() bool {
				return !strings.HasPrefix(peer.text(t, "relay_status", nil), "connected ")
			})
		}},
	}
	var mu sync.Mutex
	ids := make([]string, len(steps))
	done := map[int]bool{}
	api.Script("CC-1", func(req *scriptedapi.Request) scriptedapi.Reply {
		n := 0
		for _, m := range req.Body.Messages {
			for _, b := range m.Content {
				if b.Type == "tool_result" {
					n++
				}
			}
		}
		if n >= len(steps) {
			return scriptedapi.Reply{Text: "done"}
		}
		mu.Lock()
		first := !done[n]
		done[n] = true
		mu.Unlock()
		st := steps[n]
		if first && st.before != nil {
			st.before()
		}
		server, tool := "relay", st.tool
		if i := strings.Index(tool, ":"); i > 0 {
			server, tool = tool[:i], tool[i+1:]
		}
		id := fmt.Sprintf("toolu_step%02d", n)
		mu.Lock()
		ids[n] = id
		mu.Unlock()
		return scriptedapi.Reply{ToolUses: []scriptedapi.ToolUse{{ID: id, Name: "mcp__" + server + "__" + tool, Input: st.input}}}
	})
	cc.allowed = append(cc.allowed, "mcp__relayb__relay_send")
	out := cc.runP("go through the relay cases", 150*time.Second)
	if !strings.Contains(out, "done") {
		t.Fatalf("the turn did not end as scripted: %s", out)
	}
	reqs := api.Requests("CC-1")
	last := reqs[len(reqs)-1]
	for i, st := range steps {
		if st.golden == "" {
			continue
		}
		b, ok := last.ToolResult(ids[i])
		if !ok {
			t.Errorf("%s: no tool_result for the call in the last request", st.golden)
			continue
		}
		checkGolden(t, filepath.Join("testdata", "claude", "tool_results", st.golden+".json"), toolResultJSON(b))
	}
}

// addServer adds a second relay-mcp to the session's MCP config.
func (c *ccSession) addServer(name, relayURL, id, relayHome string) {
	c.t.Helper()
	b, err := os.ReadFile(c.mcpConfig)
	if err != nil {
		c.t.Fatal(err)
	}
	var cfg map[string]map[string]any
	json.Unmarshal(b, &cfg)
	cfg["mcpServers"][name] = map[string]any{
		"type": "stdio", "command": bins.relayMCP, "args": []string{},
		"env": map[string]string{"RELAY_URL": relayURL, "RELAY_HOME": relayHome, "CLAUDE_RELAY_SESSION_ID": id},
	}
	b, _ = json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(c.mcpConfig, b, 0o600); err != nil {
		c.t.Fatal(err)
	}
}

var normalisers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), "<MSGID>"},
	{regexp.MustCompile(`--- [0-9a-f-]{8,35} from `), "--- <MSGID> from "}, // a header's short id
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z`), "<TIME>"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:<PORT>"},
	{regexp.MustCompile(`\bin (\d+h)?(\d+m)?[\d.]+(ms|s)\b`), "in <DURATION>"},
}

func normalise(s string) string {
	for _, n := range normalisers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return s
}

// toolResultJSON is the block as the model gets it, normalised, indented.
func toolResultJSON(b scriptedapi.Block) string {
	type out struct {
		Type    string `json:"type"`
		IsError bool   `json:"is_error,omitempty"`
		Content any    `json:"content"`
	}
	o := out{Type: b.Type, IsError: b.IsError}
	if len(b.Content) == 1 && b.Content[0].Type == "text" {
		o.Content = b.Content[0].Text
	} else {
		o.Content = b.Content
	}
	js, _ := json.MarshalIndent(o, "", "  ")
	return normalise(string(js)) + "\n"
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run with -update to accept):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
