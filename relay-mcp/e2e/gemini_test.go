package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/scriptedapi"
)

// geminiTool is what Gemini CLI 0.61 names relay-mcp's relay_send: mcp_SERVER_TOOL.
const geminiTool = "mcp_relay_relay_send"

// The real Gemini CLI, offline, with the entry `relay-mcp install gemini
// --write` wrote into ~/.gemini/settings.json: relay-mcp loads as its MCP
// server under the id Gemini was started with, its tools are offered to the
// model, and the model's relay_send reaches a peer on the relay; the
// function response the model reads is relay-mcp's text.
func TestGeminiMCPSend(t *testing.T) {
	gemini := npmBin(t, "gemini", "Gemini CLI")
	r := startRelay(t, "", "")
	api, err := scriptedapi.NewGemini()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	peer := spawnPeer(t, r.url(), "CC-1", t.TempDir())
	peer.waitConnected(t)

	home, relayHome, cwd := t.TempDir(), t.TempDir(), t.TempDir()
	// The user's choice of API-key auth, as Gemini CLI's first run asks;
	// install keeps it and adds mcpServers.relay.
	if err := os.MkdirAll(filepath.Join(home, ".gemini"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".gemini", "settings.json"), []byte(`{"security":{"auth":{"selectedType":"gemini-api-key"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	relayCLI(t, []string{"HOME=" + home, "RELAY_URL=" + r.url()}, "--home", relayHome, "install", "gemini", "--write", "--command", bins.relayMCP)

	api.Script("GEM", func(req *scriptedapi.GeminiRequest) scriptedapi.Reply {
		if len(req.FunctionResponses()) > 0 {
			return scriptedapi.Reply{Text: "done"}
		}
		if strings.Contains(req.LastUserText(), "tell CC-1") {
			return scriptedapi.Reply{ToolUses: []scriptedapi.ToolUse{{Name: geminiTool, Input: map[string]any{"to": "CC-1", "message": "hello from gemini: tests pass"}}}}
		}
		return scriptedapi.Reply{Text: "ok"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gemini, "-m", "gemini-2.5-flash", "-p", "tell CC-1 that the tests pass")
	cmd.Env = []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"TMPDIR=" + os.TempDir(),
		"GEMINI_API_KEY=scripted",
		"GOOGLE_GEMINI_BASE_URL=" + api.URL("GEM"),
		"GEMINI_CLI_TRUST_WORKSPACE=true",
		"CLAUDE_RELAY_SESSION_ID=GEM",
	}
	cmd.Dir = cwd
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("gemini -p: %v\n%s", err, tail(out.String(), 3000))
	}
	reqs := api.Requests("GEM")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gemini output:\n%s", tail(out.String(), 2000))
			for i, q := range reqs {
				t.Logf("request %d: tools %v\nlast user: %s", i, q.ToolNames(), tail(q.LastUserText(), 500))
			}
		}
	})
	if len(reqs) != 2 {
		t.Fatalf("Gemini sent %d model requests, want 2 (the call, then its response)", len(reqs))
	}
	if !slices.Contains(reqs[0].ToolNames(), geminiTool) {
		t.Fatalf("the first request does not offer %s: %v", geminiTool, reqs[0].ToolNames())
	}
	var result string
	for _, o := range reqs[1].FunctionResponses() {
		result = o
	}
	if !strings.Contains(result, "Sent ") || !strings.Contains(result, "CC-1: delivered") {
		t.Fatalf("the model read %q as relay_send's result, want a delivery to CC-1", result)
	}
	if got := peer.call(t, "relay_receive", map[string]any{"wait_seconds": 5}); !strings.Contains(got, "hello from gemini: tests pass") || !strings.Contains(got, "GEM") {
		t.Fatalf("CC-1 received %q, want the message from GEM", got)
	}
}
