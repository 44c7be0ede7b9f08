package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/scriptedapi"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// codexSession is one Codex CLI setup: its own HOME (~/.codex/config.toml
// with a model provider at the scripted Responses API, the relay entry
// `relay-mcp install codex --write` wrote, and the notify hook), the relay
// id it is started with, and the directory it runs in.
type codexSession struct {
	t         *testing.T
	id        string
	home      string
	relayHome string
	cwd       string
	api       *scriptedapi.Responses
}

// newCodex writes Codex's config: the provider and notify by hand (as
// docs/agents.md tells a user), the relay entry with relay-mcp install.
func newCodex(t *testing.T, api *scriptedapi.Responses, r *relaytest.Relay, id string) *codexSession {
	t.Helper()
	npmBin(t, "codex", "Codex CLI")
	c := &codexSession{t: t, id: id, home: t.TempDir(), relayHome: t.TempDir(), cwd: t.TempDir(), api: api}
	cfg := `notify = [` + strings.Join([]string{jsonString(bins.relayMCP), `"hook"`, `"codex"`, `"--desktop=false"`}, ", ") + `]
model = "gpt-5"
model_provider = "scripted"

[model_providers.scripted]
name = "scripted"
base_url = ` + jsonString(api.URL(id)) + `
env_key = "OPENAI_API_KEY"
wire_api = "responses"
`
	if err := os.MkdirAll(filepath.Join(c.home, ".codex"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.home, ".codex", "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	relayCLI(t, []string{"HOME=" + c.home, "RELAY_URL=" + r.URL()}, "--home", c.relayHome, "install", "codex", "--write", "--command", bins.relayMCP)
	return c
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// environ is what a user's shell gives Codex: the relay id (which Codex
// hands relay-mcp only through the entry's env_vars), RELAY_HOME for the
// notify hook, and nothing of the test's own environment.
func (c *codexSession) environ() []string {
	return []string{
		"HOME=" + c.home,
		"PATH=" + os.Getenv("PATH"),
		"TMPDIR=" + os.TempDir(),
		"OPENAI_API_KEY=sk-scripted",
		"CLAUDE_RELAY_SESSION_ID=" + c.id,
		"RELAY_HOME=" + c.relayHome,
	}
}

// exec runs `codex exec` with args (a headless turn) in the session's
// directory and returns its output.
func (c *codexSession) exec(within time.Duration, args ...string) string {
	c.t.Helper()
	return runAgent(c.t, within, c.environ(), c.cwd, npmBin(c.t, "codex", "Codex CLI"), append([]string{"exec", "--skip-git-repo-check"}, args...)...)
}

// codexScript plays the model: a prompt naming a tool's job calls it; the
// request carrying the tool's output is answered with text.
func codexScript(r *scriptedapi.ResponsesRequest) scriptedapi.Reply {
	if in := r.Body.Input; len(in) > 0 && in[len(in)-1].Type == "function_call_output" {
		return scriptedapi.Reply{Text: "done"}
	}
	switch u := r.LastUserText(); {
	case strings.Contains(u, "tell CC-1"):
		return scriptedapi.Reply{ToolUses: []scriptedapi.ToolUse{{Name: "mcp__relay__relay_send", Input: map[string]any{"to": "CC-1", "message": "hello from codex: the build is green"}}}}
	case strings.Contains(u, "Check your relay messages"):
		return scriptedapi.Reply{ToolUses: []scriptedapi.ToolUse{{Name: "mcp__relay__relay_receive", Input: map[string]any{}}}}
	}
	return scriptedapi.Reply{Text: "ok"}
}

// The real Codex CLI, offline, with the entry `relay-mcp install codex
// --write` wrote: (1) relay-mcp loads as Codex's MCP server, under the id
// Codex was started with, and the model's relay_send reaches a peer on the
// relay; (2) Codex's notify program (`relay-mcp hook codex`) runs when the
// turn ends and notices the mail that came in meanwhile; (3) the wake path:
// `relay-mcp watch` runs `codex exec resume --last` when mail arrives, and
// the resumed session's model reads that mail through relay_receive.
func TestCodexMCPNotifyAndWake(t *testing.T) {
	npmBin(t, "codex", "Codex CLI")
	r := relaytest.Start(t)
	api, err := scriptedapi.NewResponses()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	api.Script("CODEX", codexScript)
	cx := newCodex(t, api, r, "CODEX")
	peer := spawnAgent(t, r.URL(), "CC-1", t.TempDir())
	peer.waitState(t, "connected")

	// (1) and (2): one turn. While Codex waits for the model's last answer,
	// CC-1 writes to CODEX, so there is mail when the turn ends.
	api.Script("CODEX", func(req *scriptedapi.ResponsesRequest) scriptedapi.Reply {
		rep := codexScript(req)
		if rep.Text == "done" {
			peer.text(t, "relay_send", map[string]any{"to": "CODEX", "message": "thanks; now look at auth.js line 42", "queue_if_unknown": true})
		}
		return rep
	})
	out := cx.exec(90*time.Second, "tell CC-1 the build is green")
	reqs := api.Requests("CODEX")
	if len(reqs) != 2 {
		t.Fatalf("Codex sent %d model requests, want 2 (the call, then its output):\n%s", len(reqs), tail(out, 2000))
	}
	if !reqs[0].HasTool("mcp__relay__relay_send") || !reqs[0].HasTool("mcp__relay__relay_receive") {
		t.Fatalf("the first request does not offer relay-mcp's tools: %s", tail(string(reqs[0].Raw), 1500))
	}
	var result string
	for _, o := range reqs[1].Outputs() {
		result = o
	}
	if !strings.Contains(result, "Sent ") || !strings.Contains(result, "CC-1: delivered") {
		t.Fatalf("the model read %q as relay_send's result, want a delivery to CC-1", result)
	}
	if got := peer.text(t, "relay_receive", map[string]any{"wait_seconds": 5}); !strings.Contains(got, "hello from codex: the build is green") || !strings.Contains(got, "CODEX") {
		t.Fatalf("CC-1 received %q, want the message from CODEX", got)
	}
	// Codex runs notify after the turn, maybe after exec returned.
	state := filepath.Join(cx.relayHome, "inbox", "CODEX", "hook-state.json")
	testkit.WaitFor(t, 15*time.Second, "the notify hook noticing CODEX's mail ("+state+")", func() bool {
		b, err := os.ReadFile(state)
		return err == nil && strings.Contains(string(b), "noticed_up_to")
	})

	// (3) The wake path: Codex is not running. relay-mcp watch wakes it
	// with a resumed headless run when mail comes for CODEX.
	api.Script("CODEX", codexScript)
	before := len(api.Requests("CODEX"))
	w := startWatch(t, peer, r.URL(), cx.environ(), cx.cwd, "CODEX",
		npmBin(t, "codex", "Codex CLI")+` exec --skip-git-repo-check resume --last "Check your relay messages (relay_receive) and act on them."`)
	peer.text(t, "relay_send", map[string]any{"to": "CODEX", "message": "please rebase on main before you push"})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	first, err := api.WaitRequest(ctx, "CODEX", before)
	if err != nil {
		t.Fatalf("no woken Codex: %v", err)
	}
	if !strings.Contains(first.AllText(), "tell CC-1 the build is green") {
		t.Fatalf("the woken run is not the resumed session (its input lacks the first turn): %s", tail(first.AllText(), 1500))
	}
	second, err := api.WaitRequest(ctx, "CODEX", before+1)
	if err != nil {
		t.Fatal(err)
	}
	var read string
	for _, o := range second.Outputs() {
		read += o
	}
	if !strings.Contains(read, "please rebase on main before you push") || !strings.Contains(read, "thanks; now look at auth.js line 42") {
		t.Fatalf("the woken model read %q from relay_receive, want both messages from CC-1", read)
	}
	w.finished(t, 60*time.Second)
}
