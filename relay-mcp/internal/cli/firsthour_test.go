package cli

import (
	"os"
	"strings"
	"testing"
)

// No command run by these tests starts a relayd of its own.
func init() { os.Setenv("RELAY_AUTOSTART", "off") }

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
