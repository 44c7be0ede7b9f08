package cli

import (
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/relaytest"
)

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
