package agentsetup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An empty home says no agent starts relay-mcp; a Claude Code entry whose
// command exists and its Stop hook are each reported OK.
func TestCheck(t *testing.T) {
	home := t.TempDir()
	env := Env{Home: home, Cwd: t.TempDir(), Getenv: func(string) string { return "" }}
	lines := Check(env)
	if len(lines) == 0 || lines[0].Status != "WARN" || !strings.Contains(lines[0].What, "no agent starts relay-mcp") {
		t.Fatalf("empty home: %+v", lines)
	}

	bin := filepath.Join(home, "relay-mcp")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(home, ".claude.json"), []byte(`{"mcpServers":{"relay":{"type":"stdio","command":"`+bin+`","args":[]}}}`), 0o600)
	os.MkdirAll(filepath.Join(home, ".claude"), 0o700)
	os.WriteFile(filepath.Join(home, ".claude", "settings.json"), []byte(`{"hooks":{"Stop":[{"hooks":[{"type":"command","command":"relay-mcp hook claude-code Stop"}]}]}}`), 0o600)
	var ok []string
	for _, l := range Check(env) {
		if l.Status == "OK" {
			ok = append(ok, l.What)
		}
	}
	all := strings.Join(ok, "\n")
	if !strings.Contains(all, "agents: Claude Code (~/.claude.json) starts relay-mcp ("+bin+")") || !strings.Contains(all, "hooks are installed in ~/.claude/settings.json (Stop)") {
		t.Errorf("OK lines:\n%s", all)
	}
}
