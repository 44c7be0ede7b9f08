package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/relaytest"
)

// No command run by these tests starts a relayd of its own.
func init() { os.Setenv("RELAY_AUTOSTART", "off") }

// send goes out under the id the shell configures, not cli-HOST.
func TestSendUsesConfiguredID(t *testing.T) {
	r := relaytest.New(t)
	t.Setenv(EnvHome, t.TempDir())
	t.Setenv("RELAY_URL", r.URL())
	t.Setenv(EnvSessionID, "")
	t.Setenv(EnvClientID, "")
	if code, _, errs := run(t, "", "receive", "--id", "B"); code != 0 {
		t.Fatalf("receive: %d %s", code, errs)
	}
	cases := []struct {
		name, env, val string
		args           []string
		from           string
	}{
		{"session env", EnvSessionID, "S-1", nil, "S-1"},
		{"client env", EnvClientID, "E-1", nil, "E-1"},
		{"global flag", "", "", []string{"--client-id", "F-1"}, "F-1"},
		{"flag after command", "", "", nil, "G-1"},
		{"as wins", EnvSessionID, "S-2", []string{"--as", "A-1"}, "A-1"},
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
			if code, out, errs := run(t, "", args...); code != 0 || !strings.Contains(out, "B=queued") {
				t.Fatalf("send %v: %d %q %s", args, code, out, errs)
			}
		})
	}
	code, out, errs := run(t, "", "receive", "--id", "B")
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
	r := relaytest.New(t)
	home := t.TempDir()
	t.Setenv(EnvHome, "")
	t.Setenv("RELAY_URL", "ws://127.0.0.1:1") // nothing listens: only the flag reaches the relay
	if code, _, errs := run(t, "", "receive", "--relay-url", r.URL(), "--home", home, "--id", "B"); code != 0 {
		t.Fatalf("receive with global flags after it: %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "--relay-url", r.URL(), "--home", home, "receive", "--id", "B"); code != 0 {
		t.Fatalf("receive with global flags before it: %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "--relay-url", "ws://127.0.0.1:1", "--home", home, "peers", "--relay-url", r.URL()); code != 0 {
		t.Fatalf("peers: the later --relay-url should win: %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "--home", home, "session", "list", "--log-level", "debug"); code != 0 {
		t.Fatalf("session list --log-level: %d %s", code, errs)
	}
}

// A usage error exits 2 with one line, not a help dump.
func TestUsageErrorsExit2(t *testing.T) {
	t.Setenv(EnvHome, t.TempDir())
	for _, args := range [][]string{
		{"receive", "--no-such-flag"},
		{"--no-such-flag"},
		{"session", "list", "--bogus"},
		{"send", "--timeout", "soon", "B", "x"},
	} {
		code, out, errs := run(t, "", args...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, errs)
		}
		if strings.Contains(out+errs, "USAGE:") || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%v: more than one line of complaint:\nstdout %s\nstderr %s", args, out, errs)
		}
		if !strings.Contains(errs, "--help") {
			t.Errorf("%v: does not point at --help: %s", args, errs)
		}
	}
}

// doctor examines the relay the options name (also given after the command)
// and says which agents start relay-mcp and whether its hooks are in.
func TestDoctorConfiguredRelayAndAgents(t *testing.T) {
	a, b := relaytest.New(t), relaytest.New(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("CLAUDE_CONFIG_DIR", "")
	t.Setenv("CODEX_HOME", "")
	t.Setenv(EnvHome, home+"/claude-relay")
	t.Setenv("RELAY_URL", a.URL())
	t.Setenv(EnvSessionID, "")
	t.Chdir(home)

	code, out, errs := run(t, "", "doctor", "--relay-url", b.URL())
	if !strings.Contains(out, "relay-mcp doctor: "+b.URL()) || !strings.Contains(out, "TCP connect "+strings.TrimPrefix(strings.TrimSuffix(b.URL(), "/v1/ws"), "ws://")) {
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
		if code, out, errs := run(t, "", args...); code != 0 {
			t.Fatalf("%v: %d %s %s", args, code, out, errs)
		}
	}
	_, out, _ = run(t, "", "doctor")
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
	if _, out, _ = run(t, "", "doctor"); !strings.Contains(out, "WARN  agents: Claude Code (~/.claude.json) starts relay-mcp as "+bin+", which is not there") {
		t.Errorf("doctor does not notice the entry's command is gone:\n%s", out)
	}
}
