package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"relay-mcp"}, args...), Streams{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestResolveIDPrecedence(t *testing.T) {
	cases := []struct{ session, flag, env, want string }{
		{"S", "F", "E", "S"},
		{"", "F", "E", "F"},
		{"", "", "E", "E"},
		{"", "", "", "mbp-42"},
	}
	for _, c := range cases {
		got, _, err := ResolveID(c.session, c.flag, c.env, "mbp.local", 42)
		if err != nil || got != c.want {
			t.Errorf("ResolveID(%q,%q,%q) = %q, %v; want %q", c.session, c.flag, c.env, got, err, c.want)
		}
	}
	if _, _, err := ResolveID("bad id", "F", "", "h", 1); err == nil || !strings.Contains(err.Error(), EnvSessionID) {
		t.Errorf("bad session id: %v", err)
	}
	if got := DefaultID("-weird host!", 7); got != "weird-host--7" {
		t.Errorf("DefaultID = %q", got)
	}
	if got := DefaultID(strings.Repeat("x", 100), 123456); len(got) > 64 {
		t.Errorf("DefaultID too long: %d", len(got))
	}
}

func TestBadIDIsAStartupError(t *testing.T) {
	t.Setenv(EnvSessionID, "../etc")
	t.Setenv(EnvHome, t.TempDir())
	code, out, errs := run(t, "")
	if code != ExitUsage || out != "" || !strings.Contains(errs, "bad client id") {
		t.Fatalf("code %d out %q err %q", code, out, errs)
	}
}

func TestSessionCommands(t *testing.T) {
	t.Setenv(EnvHome, t.TempDir())
	if code, out, errs := run(t, "", "session", "register", "CC-1"); code != 0 || !strings.Contains(out, "registered CC-1") {
		t.Fatalf("register: %d %s %s", code, out, errs)
	}
	if code, _, _ := run(t, "", "session", "register", "all"); code != ExitUsage {
		t.Fatalf("reserved id accepted: %d", code)
	}
	code, out, _ := run(t, "", "session", "list")
	if code != 0 || !strings.Contains(out, "CC-1") {
		t.Fatalf("list: %s", out)
	}
	if code, _, _ := run(t, "", "session", "remove", "CC-1"); code != 0 {
		t.Fatalf("remove: %d", code)
	}
	if code, _, _ := run(t, "", "session", "remove", "CC-1"); code != ExitNotFound {
		t.Fatalf("second remove: %d", code)
	}
}

func TestShellInit(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, _ := run(t, "", "shell-init", sh)
		if code != 0 || !strings.Contains(out, "claude-session") || !strings.Contains(out, "CLAUDE_RELAY_SESSION_ID") || !strings.Contains(out, "claude-sessions") {
			t.Fatalf("%s: %d %s", sh, code, out)
		}
	}
	if code, _, _ := run(t, "", "shell-init", "tcsh"); code != ExitUsage {
		t.Fatalf("tcsh: %d", code)
	}
}

func TestVersion(t *testing.T) {
	if code, out, _ := run(t, "", "version"); code != 0 || !strings.Contains(out, "protocol v1") {
		t.Fatalf("%d %s", code, out)
	}
}
