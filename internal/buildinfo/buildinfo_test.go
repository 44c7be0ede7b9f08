package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	installed := &debug.BuildInfo{
		GoVersion: "go1.25.1",
		Main:      debug.Module{Path: "github.com/claude-relay/claude-relay/relayd", Version: "v0.3.1"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	cases := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  Info
	}{
		{"stamped wins", "v1.0.0", "abc1234", "2026-11-30T09:00:00Z", installed,
			Info{"v1.0.0", "abc1234", "2026-11-30T09:00:00Z", "go1.25.1"}},
		{"go install: module version and vcs settings", "", "", "", installed,
			Info{"v0.3.1", "0123456789ab+dirty", "2026-01-02T03:04:05Z", "go1.25.1"}},
		{"go build in the repo: (devel), no vcs", "", "", "", &debug.BuildInfo{GoVersion: "go1.25.1", Main: debug.Module{Version: "(devel)"}},
			Info{"dev", "unknown", "unknown", "go1.25.1"}},
	}
	for _, c := range cases {
		got := Resolve(c.version, c.commit, c.date, c.bi)
		if got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	if got := Resolve("", "", "", nil); got.Version != "dev" || got.Commit != "unknown" || got.Go == "" {
		t.Errorf("no build info: %+v", got)
	}
}

// The test binary is not stamped: Get falls back to what the toolchain
// recorded (a test binary has no module version and no vcs settings).
func TestGetUnstamped(t *testing.T) {
	in := Get()
	if in.Version != "dev" || in.Commit != "unknown" || !strings.HasPrefix(in.Go, "go") {
		t.Fatalf("unstamped: %+v", in)
	}
	line := in.String("relayd", 1)
	if !strings.HasPrefix(line, "relayd dev (commit unknown, built unknown, go") || !strings.HasSuffix(line, ", protocol v1)") {
		t.Fatalf("line: %q", line)
	}
}
