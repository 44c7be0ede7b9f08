package cli

import (
	"strings"
	"testing"
)

// Bad watch arguments are refused before connecting, naming the fix.
func TestWatchUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"watch", "--exec", "true"}, "pass --for ID"},
		{[]string{"watch", "--for", "CODEX"}, "--exec is empty"},
		{[]string{"watch", "--for", "a b", "--exec", "true"}, "--for"},
		{[]string{"watch", "--for", "CODEX", "--as", "CODEX", "--exec", "true"}, "leave CODEX free"},
		{[]string{"watch", "--for", "CODEX", "--exec", ""}, "--exec is empty"},
		{[]string{"--tools", "everything"}, "use core"},
	} {
		code, _, errs := run(t, "", c.args...)
		if code != ExitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want usage error mentioning %s", c.args, code, errs, c.want)
		}
	}
	if got := watcherID(strings.Repeat("x", 64)); len(got) != 64 || !strings.HasPrefix(got, "watch-") {
		t.Errorf("watcherID of a long id = %q", got)
	}
	if code, out, _ := run(t, "", "watch", "--help"); code != 0 || !strings.Contains(out, "codex exec resume") || !strings.Contains(out, "claude -p --resume") {
		t.Errorf("watch --help: %d %s", code, out)
	}
}
