package e2e

// relay-mcp's one-shot commands against the real relay: the relay-mcp
// binary run as a person or a script runs it, in the test's environment.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/cli"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

func TestSendReceivePeersAgainstRelay(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	t.Setenv(cli.EnvHome, t.TempDir())
	t.Setenv("RELAY_URL", r.URL())
	// B has connected once so the relay knows it; then it is offline.
	if code, _, errs := relayMCPIn(t, "", "receive", "--id", "B"); code != 0 {
		t.Fatalf("receive: %d %s", code, errs)
	}
	code, out, errs := relayMCPIn(t, "", "send", "--as", "A", "B", "hello", "there")
	if code != 0 || !strings.Contains(out, "B=queued") {
		t.Fatalf("send: %d %q %s", code, out, errs)
	}
	if code, out, _ := relayMCPIn(t, "", "send", "--as", "A", "NOBODY", "x"); code != cli.ExitNotAll || !strings.Contains(out, "NOBODY=unknown") {
		t.Fatalf("send unknown: %d %s", code, out)
	}
	code, out, _ = relayMCPIn(t, "", "receive", "--id", "B")
	if code != 0 || !strings.Contains(out, "A: hello there") {
		t.Fatalf("receive: %d %q", code, out)
	}
	if code, out, _ = relayMCPIn(t, "", "receive", "--id", "B"); code != 0 || out != "" {
		t.Fatalf("second receive: %d %q", code, out)
	}
	if code, out, _ := relayMCPIn(t, "", "peers", "--json"); code != 0 || !strings.HasPrefix(out, "[") {
		t.Fatalf("peers: %d %s", code, out)
	}
	t.Setenv("RELAY_URL", "ws://127.0.0.1:1")
	if code, _, errs := relayMCPIn(t, "", "send", "--timeout", "300ms", "B", "x"); code != cli.ExitUnreachable || !strings.Contains(errs, "relayd") {
		t.Fatalf("unreachable: %d %s", code, errs)
	}
}

func TestChat(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	t.Setenv(cli.EnvHome, t.TempDir())
	t.Setenv("RELAY_URL", r.URL())
	relayMCPIn(t, "", "receive", "--id", "B")
	code, out, errs := relayMCPIn(t, "@B hi from chat\nsecond line\n/peers\n/quit\n", "chat", "--id", "A")
	if code != 0 || strings.Count(out, "sent ") != 2 || !strings.Contains(out, "A (you)") {
		t.Fatalf("chat: %d %s %s", code, out, errs)
	}
	_, out, _ = relayMCPIn(t, "", "receive", "--id", "B")
	if !strings.Contains(out, "hi from chat") || !strings.Contains(out, "second line") {
		t.Fatalf("B got %q", out)
	}
}

// send goes out under the id the shell configures, not cli-HOST.
func TestSendUsesConfiguredID(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	t.Setenv(cli.EnvHome, t.TempDir())
	t.Setenv("RELAY_URL", r.URL())
	t.Setenv(cli.EnvSessionID, "")
	t.Setenv(cli.EnvClientID, "")
	if code, _, errs := relayMCPIn(t, "", "receive", "--id", "B"); code != 0 {
		t.Fatalf("receive: %d %s", code, errs)
	}
	cases := []struct {
		name, env, val string
		args           []string
		from           string
	}{
		{"session env", cli.EnvSessionID, "S-1", nil, "S-1"},
		{"client env", cli.EnvClientID, "E-1", nil, "E-1"},
		{"global flag", "", "", []string{"--client-id", "F-1"}, "F-1"},
		{"flag after command", "", "", nil, "G-1"},
		{"as wins", cli.EnvSessionID, "S-2", []string{"--as", "A-1"}, "A-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(tc.env, tc.val)
			}
			args := append(append([]string{}, tc.args...), "send")
			if tc.name == "flag after command" {
				args = append(args, "--client-id", "G-1")
			}
			if tc.name == "as wins" {
				args = []string{"send", "--as", "A-1"}
			}
			args = append(args, "B", "from "+tc.name)
			if code, out, errs := relayMCPIn(t, "", args...); code != 0 || !strings.Contains(out, "B=queued") {
				t.Fatalf("send %v: %d %q %s", args, code, out, errs)
			}
		})
	}
	code, out, errs := relayMCPIn(t, "", "receive", "--id", "B")
	if code != 0 {
		t.Fatalf("receive: %d %s", code, errs)
	}
	for _, tc := range cases {
		if !strings.Contains(out, tc.from+": from "+tc.name) {
			t.Errorf("B's mail lacks %q from %s:\n%s", tc.name, tc.from, out)
		}
	}
	if strings.Contains(out, " cli-") {
		t.Errorf("a send went out as cli-HOST:\n%s", out)
	}
}

// Global options are accepted after the command's name; one given there
// wins over one given before it.
func TestGlobalFlagsAfterCommand(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	t.Setenv(cli.EnvHome, "")
	t.Setenv("RELAY_URL", "ws://127.0.0.1:1") // nothing listens: only the flag reaches the relay
	if code, _, errs := relayMCPIn(t, "", "receive", "--relay-url", r.URL(), "--home", home, "--id", "B"); code != 0 {
		t.Fatalf("receive with global flags after it: %d %s", code, errs)
	}
	if code, _, errs := relayMCPIn(t, "", "--relay-url", r.URL(), "--home", home, "receive", "--id", "B"); code != 0 {
		t.Fatalf("receive with global flags before it: %d %s", code, errs)
	}
	if code, _, errs := relayMCPIn(t, "", "--relay-url", "ws://127.0.0.1:1", "--home", home, "peers", "--relay-url", r.URL()); code != 0 {
		t.Fatalf("peers: the later --relay-url should win: %d %s", code, errs)
	}
	if code, _, errs := relayMCPIn(t, "", "--home", home, "session", "list", "--log-level", "debug"); code != 0 {
		t.Fatalf("session list --log-level: %d %s", code, errs)
	}
}

// doctor examines the relay the options name (also given after the command)
// and says which agents start relay-mcp and whether its hooks are in.
func TestDoctorConfiguredRelayAndAgents(t *testing.T) {
	a, b := relaytest.Start(t, "--store", "memory"), relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("CLAUDE_CONFIG_DIR", "")
	t.Setenv("CODEX_HOME", "")
	t.Setenv(cli.EnvHome, home+"/claude-relay")
	t.Setenv("RELAY_URL", a.URL())
	t.Setenv(cli.EnvSessionID, "")
	t.Chdir(home)

	code, out, errs := relayMCPIn(t, "", "doctor", "--relay-url", b.URL())
	if !strings.Contains(out, "relay-mcp doctor: "+b.URL()+"/v1/ws") || !strings.Contains(out, "TCP connect "+b.Addr) {
		t.Fatalf("doctor --relay-url B examined another relay: %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "WARN  agents: no agent starts relay-mcp") || !strings.Contains(out, "WARN  hooks: relay-mcp's Claude Code hooks are not installed") {
		t.Fatalf("doctor with no agent set up:\n%s", out)
	}

	bin := filepath.Join(home, "bin", "relay-mcp") // what the agents' entries run
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"install", "claude", "--write", "--command", bin}, {"install", "codex", "--write", "--command", bin}, {"install", "claude", "--hooks", "--write", "--command", bin}} {
		if code, out, errs := relayMCPIn(t, "", args...); code != 0 {
			t.Fatalf("%v: %d %s %s", args, code, out, errs)
		}
	}
	_, out, _ = relayMCPIn(t, "", "doctor")
	for _, want := range []string{
		"OK    agents: Claude Code (~/.claude.json) starts relay-mcp",
		"OK    agents: Codex CLI (~/.codex/config.toml) starts relay-mcp",
		"OK    hooks: relay-mcp's Claude Code hooks are installed in ~/.claude/settings.json (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "WARN  agents") || strings.Contains(out, "WARN  hooks") {
		t.Errorf("doctor still warns:\n%s", out)
	}
	os.Remove(bin)
	if _, out, _ = relayMCPIn(t, "", "doctor"); !strings.Contains(out, "WARN  agents: Claude Code (~/.claude.json) starts relay-mcp as "+bin+", which is not there") {
		t.Errorf("doctor does not notice the entry's command is gone:\n%s", out)
	}
}
