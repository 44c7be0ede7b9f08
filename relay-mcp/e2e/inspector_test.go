package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// inspector drives relay-mcp with the MCP Inspector's CLI mode
// (@modelcontextprotocol/inspector from npm, installed by
// `npm ci --prefix e2e`): each call spawns the relay-mcp binary over stdio,
// as an agent does, runs one method and prints the JSON result.
type inspector struct {
	dir      string // e2e/
	relayURL string
	home     string
}

func newInspector(t *testing.T, relayURL, home string) *inspector {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join(bins.root, "e2e"))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "inspector")); err != nil {
		t.Skipf("e2e/node_modules has no MCP Inspector: run `npm ci --prefix e2e` to enable this check")
	}
	if _, err := exec.LookPath("npx"); err != nil {
		t.Skip("npx is not installed: the MCP Inspector check needs Node.js")
	}
	return &inspector{dir: dir, relayURL: relayURL, home: home}
}

// run is `npx --prefix e2e mcp-inspector --cli -e … relay-mcp --method …`;
// it returns the decoded JSON result.
func (in *inspector) run(ctx context.Context, t *testing.T, id string, method ...string) map[string]any {
	t.Helper()
	args := []string{"--prefix", in.dir, "mcp-inspector", "--cli",
		"-e", "RELAY_HOME=" + in.home, "-e", "RELAY_URL=" + in.relayURL, "-e", "CLAUDE_RELAY_SESSION_ID=" + id, "-e", "RELAY_STRUCTURED_CONTENT=1",
		bins.relayMCP}
	args = append(args, method...)
	cmd := exec.CommandContext(ctx, "npx", args...)
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_offline=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	t.Logf("inspector %s %s: %v", id, strings.Join(method, " "), time.Since(t0).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("inspector %s %v: %v\n%s\n%s", id, method, err, stdout.String(), stderr.String())
	}
	out := stdout.Bytes()
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:] // past any banner
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("inspector %s %v printed no JSON: %v\n%s\n%s", id, method, err, stdout.String(), stderr.String())
	}
	return res
}

func resultText(res map[string]any) string {
	var s string
	cs, _ := res["content"].([]any)
	for _, c := range cs {
		if m, ok := c.(map[string]any); ok && m["type"] == "text" {
			s += m["text"].(string)
		}
	}
	return s
}

// TestE2EInspectorCLI: the MCP Inspector lists relay-mcp's tools and, as
// session INS-A, exchanges messages with a session INS-B (relay-mcp driven
// by the Go SDK) through a real relayd, then reads relay_status and
// relay_sessions.
func TestE2EInspectorCLI(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	in := newInspector(t, r.URL(), home)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// tools/list: the six tools.
	res := in.run(ctx, t, "INS-A", "--method", "tools/list")
	var names []string
	tools, _ := res["tools"].([]any)
	for _, x := range tools {
		names = append(names, x.(map[string]any)["name"].(string))
	}
	sort.Strings(names)
	if got := strings.Join(names, ","); got != "relay_clear_history,relay_peers,relay_receive,relay_send,relay_sessions,relay_status" {
		t.Fatalf("tools/list: %s", got)
	}

	b := spawnAgent(t, r.URL(), "INS-B", home)
	b.waitState(t, "connected")

	// INS-A waits for mail in relay_receive while INS-B sends to it.
	type got struct {
		res map[string]any
	}
	recv := make(chan got, 1)
	go func() {
		recv <- got{in.run(ctx, t, "INS-A", "--method", "tools/call", "--tool-name", "relay_receive", "--tool-arg", "wait_seconds=30")}
	}()
	// Delivered if INS-A's receive has connected already, else queued in
	// its mailbox (queue_if_unknown: the relay may not have seen INS-A yet)
	// and handed over when it connects.
	if text, _ := b.call(t, "relay_send", map[string]any{"to": "INS-A", "message": "hello inspector", "queue_if_unknown": true}); !strings.Contains(text, "INS-A: delivered") && !strings.Contains(text, "INS-A: queued") {
		t.Fatalf("INS-B relay_send: %s", text)
	}
	select {
	case g := <-recv:
		if text := resultText(g.res); !strings.Contains(text, "hello inspector") || !strings.Contains(text, "INS-B") {
			t.Fatalf("INS-A relay_receive: %s", text)
		}
	case <-ctx.Done():
		t.Fatal("the inspector's relay_receive did not return")
	}

	// INS-A sends to INS-B. A fresh relay-mcp may answer before it has
	// connected: then the message waits in INS-A's outbox, and the next
	// INS-A process flushes it.
	res = in.run(ctx, t, "INS-A", "--method", "tools/call", "--tool-name", "relay_send", "--tool-arg", "to=INS-B", "--tool-arg", "message=hi from the inspector")
	text := resultText(res)
	t.Logf("INS-A relay_send: %s", text)
	switch {
	case strings.Contains(text, "INS-B: delivered"):
	case strings.Contains(strings.ToLower(text), "queued"):
		in.run(ctx, t, "INS-A", "--method", "tools/call", "--tool-name", "relay_receive", "--tool-arg", "wait_seconds=3")
	default:
		t.Fatalf("INS-A relay_send: %s", text)
	}
	if text, _ := b.call(t, "relay_receive", map[string]any{"wait_seconds": 20}); !strings.Contains(text, "hi from the inspector") || !strings.Contains(text, "INS-A") {
		t.Fatalf("INS-B relay_receive: %s", text)
	}

	// relay_status and relay_sessions as the inspector sees them.
	res = in.run(ctx, t, "INS-A", "--method", "tools/call", "--tool-name", "relay_status")
	sc, _ := res["structuredContent"].(map[string]any)
	if sc["id"] != "INS-A" || sc["relay_url"] != r.URL()+"/v1/ws" {
		t.Fatalf("relay_status: %v", res)
	}
	res = in.run(ctx, t, "INS-A", "--method", "tools/call", "--tool-name", "relay_sessions")
	if text := resultText(res); !strings.Contains(text, "INS-A") || !strings.Contains(text, "INS-B") {
		t.Fatalf("relay_sessions: %s", text)
	}
}
