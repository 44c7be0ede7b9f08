package app

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/relayd/internal/service"
)

// The relayd service files of deploy/cluster run relayd with flags it has:
// every --flag of their command lines is one of relayd's, and --cluster is
// among them (a unit that names a flag relayd lost would fail at boot).
func TestClusterDeployFlags(t *testing.T) {
	known := map[string]bool{}
	for _, f := range New(io.Discard, io.Discard).Flags {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	dir := filepath.Join("..", "..", "..", "deploy", "cluster")
	lines := map[string][]string{}
	if b, err := os.ReadFile(filepath.Join(dir, "systemd", "relayd.service")); err != nil {
		t.Fatal(err)
	} else {
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(l, "ExecStart="); ok {
				lines["systemd/relayd.service"] = service.SplitSystemdExec(rest)
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "launchd", "com.claude-relay.relayd.plist")); err != nil {
		t.Fatal(err)
	} else if lines["launchd/com.claude-relay.relayd.plist"], err = service.PlistArgs(b); err != nil {
		t.Fatal(err)
	}
	for name, argv := range lines {
		if len(argv) < 2 || filepath.Base(argv[0]) != "relayd" {
			t.Errorf("%s runs %q, not relayd with flags", name, argv)
			continue
		}
		seen := map[string]bool{}
		for _, a := range argv[1:] {
			flag, ok := strings.CutPrefix(a, "--")
			if !ok {
				continue // a flag's value
			}
			flag, _, _ = strings.Cut(flag, "=")
			seen[flag] = true
			if !known[flag] {
				t.Errorf("%s: relayd has no --%s", name, flag)
			}
		}
		for _, want := range []string{"cluster", "listen", "token-file", "tls-cert", "tls-key"} {
			if !seen[want] {
				t.Errorf("%s: no --%s", name, want)
			}
		}
	}
}
