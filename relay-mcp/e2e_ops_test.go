package main

// End-to-end checks of how relay-mcp and relayd are installed and operated:
// version stamping, `install`, `doctor`, and the MCP Inspector CLI.

import (
	"os/exec"
	"strings"
	"testing"
)

// The stamp TestMain builds both binaries with, as `make build` does.
const (
	stampVersion = "v9.8.7-test"
	stampCommit  = "abc1234"
	stampDate    = "2026-01-02T03:04:05Z"
)

func testStamp(module string) string {
	pkg := "github.com/claude-relay/claude-relay/" + module + "/internal/buildinfo"
	return "-X " + pkg + ".Version=" + stampVersion + " -X " + pkg + ".Commit=" + stampCommit + " -X " + pkg + ".Date=" + stampDate
}

// `version` of a binary built with -ldflags prints the stamped values (the
// unstamped fallback to the Go build information is tested in package
// buildinfo).
func TestVersionStamped(t *testing.T) {
	for _, bin := range []string{bins.relayMCP, bins.relayd} {
		if bin == bins.relayd && bins.relaydErr != "" {
			t.Skip(bins.relaydErr)
		}
		out, err := exec.Command(bin, "version").CombinedOutput()
		name := "relay-mcp"
		if bin == bins.relayd {
			name = "relayd"
		}
		want := name + " " + stampVersion + " (commit " + stampCommit + ", built " + stampDate + ", go"
		if err != nil || !strings.HasPrefix(string(out), want) || !strings.HasSuffix(strings.TrimSpace(string(out)), "protocol v1)") {
			t.Errorf("%s version: %v %q; want prefix %q", name, err, out, want)
		}
	}
}
