package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/scriptedapi"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// geminiTool names relay-mcp's tools as Gemini CLI 0.61 offers them to its
// model: mcp_SERVER_TOOL.
func geminiTool(name string) string { return "mcp_relay_" + name }

// geminiModel is given on every run: with the default ("auto") Gemini CLI
// first asks a router model which model to use.
const geminiModel = "gemini-2.5-flash"

// geminiSession is one Gemini CLI setup: its own HOME (settings.json with
// API-key auth, as its first run asks, and the entry `relay-mcp install
// gemini --write` merged in), the relay id it is started with, and its
// directory (Gemini keeps sessions per directory).
type geminiSession struct {
	t                   *testing.T
	id, home, relayHome string
	cwd                 string
	api                 *scriptedapi.Gemini
}

func newGemini(t *testing.T, api *scriptedapi.Gemini, r *relaytest.Relay, id string) *geminiSession {
	t.Helper()
	g := &geminiSession{t: t, id: id, home: t.TempDir(), relayHome: t.TempDir(), cwd: t.TempDir(), api: api}
	if err := os.MkdirAll(filepath.Join(g.home, ".gemini"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(g.home, ".gemini", "settings.json"), []byte(`{"security":{"auth":{"selectedType":"gemini-api-key"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	relayCLI(t, []string{"HOME=" + g.home, "RELAY_URL=" + r.URL()}, "--home", g.relayHome, "install", "gemini", "--write", "--command", bins.relayMCP)
	return g
}

// environ is what a user's shell gives Gemini CLI; relay-mcp inherits it.
func (g *geminiSession) environ() []string {
	return []string{
		"HOME=" + g.home,
		"PATH=" + os.Getenv("PATH"),
		"TMPDIR=" + os.TempDir(),
		"GEMINI_API_KEY=scripted",
		"GOOGLE_GEMINI_BASE_URL=" + g.api.URL(g.id),
		"GEMINI_CLI_TRUST_WORKSPACE=true",
		"CLAUDE_RELAY_SESSION_ID=" + g.id,
	}
}

// geminiScript plays the model: a prompt naming a tool's job calls it; the
// request carrying the tool's response is answered with text.
func geminiScript(r *scriptedapi.GeminiRequest) scriptedapi.Reply {
	if len(r.FunctionResponses()) > 0 {
		return scriptedapi.Reply{Text: "done"}
	}
	switch u := r.LastUserText(); {
	case strings.Contains(u, "tell CC-1"):
		return scriptedapi.Reply{ToolUses: []scriptedapi.ToolUse{{Name: geminiTool("relay_send"), Input: map[string]any{"to": "CC-1", "message": "hello from gemini: tests pass"}}}}
	case strings.Contains(u, "Check your relay messages"):
		return scriptedapi.Reply{ToolUses: []scriptedapi.ToolUse{{Name: geminiTool("relay_receive"), Input: map[string]any{}}}}
	}
	return scriptedapi.Reply{Text: "ok"}
}

// responses joins the function responses of a request.
func responses(r *scriptedapi.GeminiRequest) string {
	var out string
	for _, o := range r.FunctionResponses() {
		out += o
	}
	return out
}

// The real Gemini CLI, offline, with the entry `relay-mcp install gemini
// --write` wrote: relay-mcp loads as its MCP server under the id Gemini was
// started with, the model's relay_send reaches a peer on the relay, and
// the function response the model reads is relay-mcp's text. Then the
// wake path: `relay-mcp watch` runs `gemini --resume latest -p` when mail
// comes, and the resumed session's model reads it with relay_receive.
func TestGeminiMCPSendAndWake(t *testing.T) {
	gemini := npmBin(t, "gemini", "Gemini CLI")
	r := relaytest.Start(t)
	api, err := scriptedapi.NewGemini()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	api.Script("GEM", geminiScript)
	peer := spawnAgent(t, r.URL(), "CC-1", t.TempDir())
	peer.waitState(t, "connected")
	g := newGemini(t, api, r, "GEM")

	out := runAgent(t, 120*time.Second, g.environ(), g.cwd, gemini, "-m", geminiModel, "-p", "tell CC-1 that the tests pass")
	reqs := api.Requests("GEM")
	if len(reqs) != 2 {
		t.Fatalf("Gemini sent %d model requests, want 2 (the call, then its response):\n%s", len(reqs), tail(out, 2000))
	}
	if !slices.Contains(reqs[0].ToolNames(), geminiTool("relay_send")) {
		t.Fatalf("the first request does not offer %s: %v", geminiTool("relay_send"), reqs[0].ToolNames())
	}
	if got := responses(reqs[1]); !strings.Contains(got, "Sent ") || !strings.Contains(got, "CC-1: delivered") {
		t.Fatalf("the model read %q as relay_send's result, want a delivery to CC-1", got)
	}
	if got := peer.text(t, "relay_receive", map[string]any{"wait_seconds": 5}); !strings.Contains(got, "hello from gemini: tests pass") || !strings.Contains(got, "GEM") {
		t.Fatalf("CC-1 received %q, want the message from GEM", got)
	}

	// The wake path: Gemini is not running; mail for GEM resumes its
	// latest session headless.
	before := len(api.Requests("GEM"))
	w := startWatch(t, peer, r.URL(), g.environ(), g.cwd, "GEM",
		gemini+" -m "+geminiModel+` --resume latest -p "Check your relay messages (relay_receive) and act on them."`)
	peer.text(t, "relay_send", map[string]any{"to": "GEM", "message": "thanks; please also run the linter"})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	first, err := api.WaitRequest(ctx, "GEM", before)
	if err != nil {
		t.Fatalf("no woken Gemini: %v", err)
	}
	if !strings.Contains(first.AllText(), "tell CC-1 that the tests pass") {
		t.Fatalf("the woken run is not the resumed session (its input lacks the first turn): %s", tail(first.AllText(), 1500))
	}
	second, err := api.WaitRequest(ctx, "GEM", before+1)
	if err != nil {
		t.Fatal(err)
	}
	if got := responses(second); !strings.Contains(got, "thanks; please also run the linter") {
		t.Fatalf("the woken model read %q from relay_receive, want the message from CC-1", got)
	}
	w.finished(t, 60*time.Second)
}
