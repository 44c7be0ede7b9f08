package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// install claude --hooks merges: every other key and hook stays, an
// earlier relay-mcp install is replaced (not duplicated), the old file is
// backed up; without --write nothing changes.
func TestInstallClaudeHooks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "settings.json")
	orig := `{
  "model": "opus",
  "permissions": {"allow": ["Bash(go test:*)"]},
  "hooks": {
    "PostToolUse": [{"matcher": "Edit|Write", "hooks": [{"type": "command", "command": "gofmt -w \"$CLAUDE_FILE\""}]}],
    "Stop": [{"hooks": [{"type": "command", "command": "/old/bin/relay-mcp hook claude-code --on-stop block Stop"}]}]
  }
}`
	os.WriteFile(path, []byte(orig), 0o600)

	code, out, errOut := run(t, "", "install", "claude", "--hooks", "--settings", path, "--command", "relay-mcp")
	if code != 0 || !strings.Contains(out, "--write") {
		t.Fatalf("dry run: exit %d %q %q", code, out, errOut)
	}
	if b, _ := os.ReadFile(path); string(b) != orig {
		t.Fatal("a dry run changed the file")
	}
	for i := 0; i < 2; i++ { // twice: the second install replaces the first
		code, out, errOut = run(t, "", "install", "claude", "--hooks", "--write", "--settings", path, "--command", "relay-mcp")
		if code != 0 || !strings.Contains(out, "wrote relay-mcp hooks") || !strings.Contains(out, ".bak-") {
			t.Fatalf("write: exit %d %q %q", code, out, errOut)
		}
	}
	b, _ := os.ReadFile(path)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["model"] != "opus" || doc["permissions"] == nil {
		t.Fatalf("other settings lost: %s", b)
	}
	hooks := doc["hooks"].(map[string]any)
	count := func(ev, sub string) int {
		n := 0
		for _, g := range hooks[ev].([]any) {
			for _, h := range g.(map[string]any)["hooks"].([]any) {
				if strings.Contains(h.(map[string]any)["command"].(string), sub) {
					n++
				}
			}
		}
		return n
	}
	for _, ev := range []string{"SessionStart", "UserPromptSubmit", "PostToolUse", "Stop"} {
		want := 1
		if ev == "Stop" {
			want = 2 // and the wake listener
		}
		if n := count(ev, "relay-mcp hook claude-code"); n != want {
			t.Errorf("%s has %d relay-mcp hooks, want %d:\n%s", ev, n, want, b)
		}
	}
	if count("Stop", "--wake Stop") != 1 {
		t.Errorf("no wake listener on Stop:\n%s", b)
	}
	if count("PostToolUse", "gofmt") != 1 {
		t.Errorf("the user's own hook is gone:\n%s", b)
	}
	if count("Stop", "--on-stop notify Stop") != 1 || count("Stop", "/old/bin") != 0 {
		t.Errorf("the old relay-mcp Stop hook was not replaced:\n%s", b)
	}
	baks, _ := filepath.Glob(path + ".bak-*")
	if len(baks) != 2 {
		t.Fatalf("backups %v, want one per write", baks)
	}
	if first, _ := os.ReadFile(baks[0]); string(first) != orig {
		t.Fatalf("the first backup is not the original file:\n%s", first)
	}

	// A file that is not JSON is left alone with a clear error.
	os.WriteFile(path, []byte("{not json"), 0o600)
	code, _, errOut = run(t, "", "install", "claude", "--hooks", "--write", "--settings", path)
	if code != ExitError || !strings.Contains(errOut, "not valid JSON") {
		t.Fatalf("bad file: exit %d %q", code, errOut)
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Fatal("a bad file was overwritten")
	}
	if code, _, errOut := run(t, "", "install", "claude", "--settings", path); code != ExitUsage || !strings.Contains(errOut, "--hooks") {
		t.Fatalf("no --hooks: exit %d %q", code, errOut)
	}
}

// The exact content documented in docs/agents.md: a fresh settings file.
func TestInstallClaudeHooksFresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "settings.json")
	if code, _, errOut := run(t, "", "install", "claude", "--hooks", "--write", "--settings", path, "--command", "relay-mcp"); code != 0 {
		t.Fatalf("exit %d %q", code, errOut)
	}
	got, _ := os.ReadFile(path)
	checkGolden(t, "install_fresh_settings", string(got))
}
