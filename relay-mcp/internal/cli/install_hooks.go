package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/hook"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/install"
)

// hookBinary is how a hook runs relay-mcp: plain "relay-mcp" when that is
// this binary on PATH, else this binary's absolute path.
func hookBinary() string {
	self, err := os.Executable()
	if err != nil {
		return "relay-mcp"
	}
	if onPath, err := exec.LookPath("relay-mcp"); err == nil {
		a, _ := filepath.EvalSymlinks(self)
		b, _ := filepath.EvalSymlinks(onPath)
		if a != "" && a == b {
			return "relay-mcp"
		}
	}
	return self
}

// runInstallHooks is `relay-mcp install claude --hooks`: it merges
// relay-mcp's hooks into a Claude Code settings file (printing the result
// without --write).
func runInstallHooks(s Streams, o installOptions) error {
	switch o.onStop {
	case hook.StopBlock, hook.StopNotify, hook.StopOff:
	default:
		return exitf(ExitUsage, "--on-stop %q: use block, notify or off", o.onStop)
	}
	path := o.settings
	if path == "" {
		p, err := install.ClaudeSettingsPath()
		if err != nil {
			return exitf(ExitUsage, "cannot find the home directory; pass --settings: %v", err)
		}
		path = p
	}
	bin := o.command
	if bin == "" {
		bin = hookBinary()
	}
	merged, backup, err := install.ClaudeHooksFile(path, bin, o.onStop, o.write)
	if err != nil {
		return exitf(ExitError, "%v", err)
	}
	if !o.write {
		fmt.Fprintf(s.Stdout, "%s# %s would become the above; run again with --write to write it\n", merged, path)
		return nil
	}
	fmt.Fprintf(s.Stdout, "wrote relay-mcp hooks to %s", path)
	if backup != "" {
		fmt.Fprintf(s.Stdout, " (the old file is %s)", backup)
	}
	fmt.Fprintln(s.Stdout, "; restart Claude Code sessions to load them")
	return nil
}
