// Package buildinfo says which build of a binary (relayd, relay-mcp) this
// is: the version, commit and date stamped by `make build` with -ldflags,
// or, for a binary built by `go install …@version` (which stamps nothing),
// what the Go toolchain recorded in the binary (module version,
// vcs.revision, vcs.time).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped at build time, e.g.
//
//	-X github.com/claude-relay/claude-relay/internal/buildinfo.Version=v0.2.0
//
// Empty means "not stamped": Get falls back to the Go build information.
var (
	Version = ""
	Commit  = ""
	Date    = ""
)

// Info describes one build.
type Info struct {
	Version string // v0.2.0, a pseudo-version, or "dev"
	Commit  string // revision, with "+dirty" for uncommitted changes; "unknown"
	Date    string // RFC 3339 build or commit time; "unknown"
	Go      string // toolchain, e.g. go1.25.1
}

// Get returns this binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return Resolve(Version, Commit, Date, bi)
}

// Resolve prefers the stamped values and fills what is missing from bi
// (which may be nil).
func Resolve(version, commit, date string, bi *debug.BuildInfo) Info {
	in := Info{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
	if bi != nil {
		if bi.GoVersion != "" {
			in.Go = bi.GoVersion
		}
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		var rev, at string
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if in.Commit == "" && rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "+dirty"
			}
			in.Commit = rev
		}
		if in.Date == "" {
			in.Date = at
		}
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	if in.Commit == "" {
		in.Commit = "unknown"
	}
	if in.Date == "" {
		in.Date = "unknown"
	}
	return in
}

// String is the version line of `NAME version`, e.g.
// "relayd v0.2.0 (commit 1a2b3c4, built 2026-01-02T03:04:05Z, go1.25.1, protocol v1)".
func (in Info) String(name string, proto int) string {
	return fmt.Sprintf("%s %s (commit %s, built %s, %s, protocol v%d)", name, in.Version, in.Commit, in.Date, in.Go, proto)
}
