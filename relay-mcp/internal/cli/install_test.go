package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// testdata is absolute: some tests change directory.
var testdata, _ = filepath.Abs("testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join(testdata, name)
	if *update {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// installEnv gives the test an empty HOME and no relay settings from the
// environment that runs it.
func installEnv(t *testing.T) string {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, k := range []string{"RELAY_URL", "RELAY_TOKEN", "RELAY_TOKEN_FILE", "RELAY_CA_FILE", EnvHome, "RELAY_LOG_FILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	return home
}

var backupRE = regexp.MustCompile(`\.bak-\d{8}-\d{6}(-\d+)?`)

func scrub(home, s string) string {
	s = strings.ReplaceAll(s, home, "$HOME")
	return backupRE.ReplaceAllString(s, ".bak-DATE-TIME")
}

const exe = "/usr/local/bin/relay-mcp"

func TestInstallPrints(t *testing.T) {
	home := installEnv(t)
	for _, client := range []string{"claude", "codex", "gemini", "cursor"} {
		code, out, errs := run(t, "", "install", client, "--command", exe)
		if code != 0 {
			t.Fatalf("%s: %d %s", client, code, errs)
		}
		golden(t, "install/print-"+client+".golden", out+"--- stderr\n"+scrub(home, errs))
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Fatalf("printing wrote files: %v", entries)
	}
}

func TestInstallWriteClaudeKeepsEveryKey(t *testing.T) {
	home := installEnv(t)
	orig := `{
  "numStartups": 123456789012345678901,
  "theme": "dark",
  "projects": {"/src/app": {"allowedTools": ["Bash(git:*)"], "mcpServers": {}}},
  "mcpServers": {
    "github": {"type": "stdio", "command": "github-mcp", "args": ["stdio"], "env": {"GITHUB_TOKEN": "x"}},
    "relay": {"command": "/old/relay-mcp"}
  },
  "zzz": null
}
`
	p := filepath.Join(home, ".claude.json")
	os.WriteFile(p, []byte(orig), 0o600)
	t.Setenv("RELAY_URL", "ws://127.0.0.1:7777")
	code, out, errs := run(t, "", "install", "claude", "--write", "--command", exe)
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	got, _ := os.ReadFile(p)
	golden(t, "install/claude.json.golden", string(got))
	golden(t, "install/write-claude.golden", scrub(home, out))
	backups, _ := filepath.Glob(p + ".bak-*")
	if len(backups) != 1 {
		t.Fatalf("backups: %v", backups)
	}
	if b, _ := os.ReadFile(backups[0]); string(b) != orig {
		t.Fatalf("backup differs from the original: %s", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want the original 0600", fi.Mode().Perm())
	}
	// Idempotent: nothing written, no second backup, and it says so.
	code, out, _ = run(t, "", "install", "claude", "--write", "--command", exe)
	if code != 0 || !strings.Contains(out, "already has this mcpServers.relay entry; nothing changed") {
		t.Fatalf("second write: %d %q", code, out)
	}
	if again, _ := os.ReadFile(p); string(again) != string(got) {
		t.Fatal("second write changed the file")
	}
	if backups, _ := filepath.Glob(p + ".bak-*"); len(backups) != 1 {
		t.Fatalf("second write made a backup: %v", backups)
	}
}

func TestInstallWriteProjectAndNewFiles(t *testing.T) {
	home := installEnv(t)
	proj := t.TempDir()
	t.Chdir(proj)
	tok := filepath.Join(home, "token")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	if code, out, errs := run(t, "", "--token-file", tok, "install", "claude", "--project", "--write", "--command", exe); code != 0 || !strings.Contains(out, "created ./.mcp.json") {
		t.Fatalf("%d %s %s", code, out, errs)
	}
	got, _ := os.ReadFile(filepath.Join(proj, ".mcp.json"))
	golden(t, "install/mcp.json.golden", scrub(home, string(got)))
	if strings.Contains(string(got), "s3cret") {
		t.Fatal("the token value was written into the config")
	}
	for _, c := range []struct{ client, file string }{{"gemini", ".gemini/settings.json"}, {"cursor", ".cursor/mcp.json"}} {
		if code, out, errs := run(t, "", "install", c.client, "--write", "--command", exe); code != 0 || !strings.Contains(out, "created ~/"+c.file) {
			t.Fatalf("%s: %d %s %s", c.client, code, out, errs)
		}
		got, _ := os.ReadFile(filepath.Join(home, c.file))
		golden(t, "install/"+c.client+".json.golden", string(got))
	}
	if code, _, errs := run(t, "", "install", "codex", "--project"); code != ExitUsage || !strings.Contains(errs, "no project config file") {
		t.Fatalf("codex --project: %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "install", "vscode"); code != ExitUsage || !strings.Contains(errs, "use one of claude, codex, gemini, cursor") {
		t.Fatalf("unknown client: %d %s", code, errs)
	}
	// A token given only as a value is not written; the user is told how.
	t.Setenv("RELAY_TOKEN", "s3cret")
	code, out, errs := run(t, "", "install", "cursor", "--command", exe)
	if code != 0 || strings.Contains(out, "s3cret") || !strings.Contains(errs, "--token-file") {
		t.Fatalf("token: %d %s %s", code, out, errs)
	}
}

func TestInstallWriteCodexKeepsEveryLine(t *testing.T) {
	home := installEnv(t)
	orig := `# my codex settings
model = "o4-mini"   # the fast one

[mcp_servers.github]
command = "github-mcp"
args = ["stdio"]

[mcp_servers.relay]
command = "/old/relay-mcp"
args = ["--log-level", "debug"]

[mcp_servers.relay.env]
RELAY_URL = "ws://10.1.2.3:9999"

# tools I trust
[mcp_servers.zeta]
command = "zeta"

[profiles.work]
model = "o3"
`
	p := filepath.Join(home, ".codex", "config.toml")
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte(orig), 0o644)
	code, out, errs := run(t, "", "install", "codex", "--write", "--command", exe)
	if code != 0 || !strings.Contains(out, "updated ~/.codex/config.toml: mcp_servers.relay") {
		t.Fatalf("%d %s %s", code, out, errs)
	}
	got, _ := os.ReadFile(p)
	golden(t, "install/config.toml.golden", string(got))
	if code, out, _ := run(t, "", "install", "codex", "--write", "--command", exe); code != 0 || !strings.Contains(out, "nothing changed") {
		t.Fatalf("second write: %d %s", code, out)
	}
	// A file without the table gets it appended.
	os.WriteFile(p, []byte("model = \"o3\"\n"), 0o644)
	if code, _, errs := run(t, "", "install", "codex", "--write", "--command", exe); code != 0 {
		t.Fatalf("append: %d %s", code, errs)
	}
	got, _ = os.ReadFile(p)
	if want := "model = \"o3\"\n\n[mcp_servers.relay]\ncommand = \"" + exe + "\"\nargs = []\n" +
		"env_vars = [\"CLAUDE_RELAY_SESSION_ID\", \"RELAY_CLIENT_ID\", \"RELAY_TOKEN\"]\ndefault_tools_approval_mode = \"approve\"\n\n" +
		"[mcp_servers.relay.env]\nRELAY_AGENT = \"codex\"\n"; string(got) != want {
		t.Fatalf("append:\n%s\nwant:\n%s", got, want)
	}
}

// A config file that does not parse is left exactly as it is, with no
// backup, and the error names the file.
func TestInstallCorruptConfigUntouched(t *testing.T) {
	home := installEnv(t)
	cases := []struct{ client, file, body, msg string }{
		{"claude", ".claude.json", `{"theme": "dark",` + "\n", "~/.claude.json is not a config file this command can edit"},
		{"gemini", ".gemini/settings.json", `["not", "an", "object"]`, "not a JSON object"},
		{"cursor", ".cursor/mcp.json", `{"mcpServers": "relay"}`, `"mcpServers" is not a JSON object`},
		{"codex", ".codex/config.toml", "[mcp_servers.relay\ncommand = 1\n", "not valid TOML"},
		{"codex", ".codex/config.toml", "mcp_servers = { relay = { command = \"x\" } }\n", "defined inline or with dotted keys"},
	}
	for _, c := range cases {
		p := filepath.Join(home, c.file)
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, []byte(c.body), 0o600)
		code, _, errs := run(t, "", "install", c.client, "--write", "--command", exe)
		if code != ExitError || !strings.Contains(errs, c.msg) || !strings.Contains(errs, "nothing was changed") {
			t.Errorf("%s %q: %d %s", c.client, c.body, code, errs)
		}
		if got, _ := os.ReadFile(p); string(got) != c.body {
			t.Errorf("%s: file changed to %q", c.client, got)
		}
		if backups, _ := filepath.Glob(p + ".bak-*"); len(backups) != 0 {
			t.Errorf("%s: backup written for a refused edit: %v", c.client, backups)
		}
	}
}

// install claude --hooks (the hooks side of install) keeps the settings'
// key order and values as written, like the MCP entry merge does.
func TestInstallHooksKeepOrderAndNumbers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	orig := `{"zeta": 1.0, "cleanupPeriodDays": 123456789012345678901, "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done", "timeout": 30}]}]}, "alpha": true}`
	os.WriteFile(path, []byte(orig), 0o600)
	if code, _, errs := run(t, "", "install", "claude", "--hooks", "--write", "--settings", path, "--command", "relay-mcp"); code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	z, c, h, a := strings.Index(got, `"zeta": 1.0`), strings.Index(got, `"cleanupPeriodDays": 123456789012345678901`), strings.Index(got, `"hooks"`), strings.Index(got, `"alpha": true`)
	if z < 0 || c < 0 || !(z < c && c < h && h < a) {
		t.Fatalf("order or values changed:\n%s", got)
	}
	if !strings.Contains(got, `"command": "say done"`) || !strings.Contains(got, `"timeout": 30`) || !strings.Contains(got, "relay-mcp hook claude-code --on-stop notify Stop") {
		t.Fatalf("hooks:\n%s", got)
	}
	if code, _, errs := run(t, "", "install", "codex", "--hooks"); code != ExitUsage || !strings.Contains(errs, "only Claude Code") {
		t.Fatalf("codex --hooks: %d %s", code, errs)
	}
}

// A list of relays (a cluster's nodes) goes into the agent's config whole,
// normalised: the session fails over between them as the shell would.
func TestInstallKeepsTheRelayList(t *testing.T) {
	installEnv(t)
	t.Setenv("RELAY_URL", "wss://relay1.lan:9999, wss://relay2.lan:9999")
	code, out, errs := run(t, "", "install", "claude", "--command", exe)
	if code != 0 || !strings.Contains(out, `"RELAY_URL": "wss://relay1.lan:9999/v1/ws,wss://relay2.lan:9999/v1/ws"`) {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
}
