package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/hook"
	ucli "github.com/urfave/cli/v2"
)

// hookMarker identifies the hook entries relay-mcp wrote, so installing
// again replaces them instead of adding duplicates.
const hookMarker = " hook claude-code "

// hookTimeoutSeconds is the timeout written for each hook: Claude Code's
// limit, far above the milliseconds a hook takes, so a stuck hook still
// ends.
const hookTimeoutSeconds = 5

// ClaudeHooks returns the "hooks" entries relay-mcp installs: one command
// per event, bin being how Claude Code should run relay-mcp.
func ClaudeHooks(bin, onStop string) map[string]any {
	entry := func(args string) map[string]any {
		return map[string]any{"type": "command", "command": bin + hookMarker + args, "timeout": hookTimeoutSeconds}
	}
	out := map[string]any{}
	for _, ev := range hook.Events {
		args := ev
		if ev == hook.EventStop {
			args = "--on-stop " + onStop + " " + ev
		}
		group := map[string]any{"hooks": []any{entry(args)}}
		if ev == hook.EventPostToolUse {
			group["matcher"] = "*" // after every tool
		}
		out[ev] = []any{group}
	}
	return out
}

// MergeClaudeHooks returns settings (the content of a Claude Code settings
// file, empty for none) with relay-mcp's hook entries: every other key and
// every other hook is kept; relay-mcp entries written before are replaced.
func MergeClaudeHooks(settings []byte, bin, onStop string) ([]byte, error) {
	doc := map[string]any{}
	if len(bytes.TrimSpace(settings)) > 0 {
		if err := json.Unmarshal(settings, &doc); err != nil {
			return nil, fmt.Errorf("the settings file is not valid JSON (%v): fix it or move it aside, then run this again", err)
		}
	}
	hooks, _ := doc["hooks"].(map[string]any)
	if doc["hooks"] != nil && hooks == nil {
		return nil, fmt.Errorf(`"hooks" in the settings file is not an object: fix it by hand, then run this again`)
	}
	if hooks == nil {
		hooks = map[string]any{}
	}
	for ev, groups := range ClaudeHooks(bin, onStop) {
		var kept []any
		old, _ := hooks[ev].([]any)
		for _, g := range old {
			if g, ok := g.(map[string]any); ok {
				if hs, ok := g["hooks"].([]any); ok {
					var rest []any
					for _, h := range hs {
						if h, ok := h.(map[string]any); ok {
							if cmd, _ := h["command"].(string); strings.Contains(cmd, hookMarker) {
								continue // ours, from an earlier install
							}
						}
						rest = append(rest, h)
					}
					if len(rest) == 0 {
						continue
					}
					g["hooks"] = rest
				}
			}
			kept = append(kept, g)
		}
		hooks[ev] = append(kept, groups.([]any)...)
	}
	doc["hooks"] = hooks
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// installHooks merges relay-mcp's hooks into the settings file at path.
// Without write it only returns the new content. With write, an existing
// file is first copied to path.bak-TIME and the new one is renamed into
// place (a crash leaves the old file or the new one, never half of one).
func installHooks(path, bin, onStop string, write bool) ([]byte, string, error) {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, "", fmt.Errorf("read %s: %w", path, err)
	}
	merged, err := MergeClaudeHooks(old, bin, onStop)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	if !write {
		return merged, "", nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", err
	}
	backup := ""
	if old != nil {
		if backup, err = writeBackup(path, old); err != nil {
			return nil, "", fmt.Errorf("back up %s: %w", path, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".settings-*.tmp")
	if err != nil {
		return nil, "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(merged); err != nil {
		tmp.Close()
		return nil, "", err
	}
	if err := tmp.Close(); err != nil {
		return nil, "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, "", fmt.Errorf("write %s: %w", path, err)
	}
	return merged, backup, nil
}

// claudeSettingsPath is ~/.claude/settings.json, or settings.json in
// $CLAUDE_CONFIG_DIR when set.
func claudeSettingsPath() (string, error) {
	if d := os.Getenv("CLAUDE_CONFIG_DIR"); d != "" {
		return filepath.Join(d, "settings.json"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, ".claude", "settings.json"), nil
}

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

// installHooksCommand is `relay-mcp install claude --hooks`. (When the
// install command for MCP configs lands, this becomes its --hooks flag.)
func installHooksCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "install",
		Usage: "configure an agent to use relay-mcp",
		Subcommands: []*ucli.Command{{
			Name:  "claude",
			Usage: "write relay-mcp's hooks into Claude Code's settings (~/.claude/settings.json), merging with what is there",
			Description: `With --hooks, adds SessionStart, UserPromptSubmit, PostToolUse and Stop hooks
that run "relay-mcp hook claude-code EVENT", so a session sees its relay mail
at its next prompt or tool call without being asked. Every other setting and
hook is kept; relay-mcp's entries from an earlier install are replaced.
Without --write it prints the merged file and changes nothing; with --write
it backs the old file up to settings.json.bak-TIME first.

Examples:
   relay-mcp install claude --hooks                    # show what would be written
   relay-mcp install claude --hooks --write
   relay-mcp install claude --hooks --on-stop block --write
   relay-mcp install claude --hooks --settings .claude/settings.json --write   # one project`,
			Flags: []ucli.Flag{
				&ucli.BoolFlag{Name: "hooks", Usage: "install the hooks (required: the MCP server entry is `claude mcp add relay -- relay-mcp`)"},
				&ucli.BoolFlag{Name: "write", Usage: "write the file (default: print it)"},
				&ucli.StringFlag{Name: "settings", DefaultText: "~/.claude/settings.json", Usage: "the Claude Code settings file to change"},
				&ucli.StringFlag{Name: "on-stop", Value: hook.StopNotify, Usage: "the Stop hook's --on-stop: block, notify or off"},
				&ucli.StringFlag{Name: "command", DefaultText: "relay-mcp, or this binary's path when relay-mcp on PATH is another", Usage: "how the hooks run relay-mcp"},
			},
			Action: func(c *ucli.Context) error {
				if !c.Bool("hooks") {
					return exitf(ExitUsage, "nothing to install: add --hooks (the MCP server itself: claude mcp add relay -- relay-mcp)")
				}
				switch c.String("on-stop") {
				case hook.StopBlock, hook.StopNotify, hook.StopOff:
				default:
					return exitf(ExitUsage, "--on-stop %q: use block, notify or off", c.String("on-stop"))
				}
				path := c.String("settings")
				if path == "" {
					p, err := claudeSettingsPath()
					if err != nil {
						return exitf(ExitUsage, "cannot find the home directory; pass --settings: %v", err)
					}
					path = p
				}
				bin := c.String("command")
				if bin == "" {
					bin = hookBinary()
				}
				merged, backup, err := installHooks(path, bin, c.String("on-stop"), c.Bool("write"))
				if err != nil {
					return exitf(ExitError, "%v", err)
				}
				if !c.Bool("write") {
					fmt.Fprintf(s.Stdout, "%s# %s would become the above; run again with --write to write it\n", merged, path)
					return nil
				}
				fmt.Fprintf(s.Stdout, "wrote relay-mcp hooks to %s", path)
				if backup != "" {
					fmt.Fprintf(s.Stdout, " (the old file is %s)", backup)
				}
				fmt.Fprintln(s.Stdout, "; restart Claude Code sessions to load them")
				return nil
			},
		}},
	}
}

// writeBackup writes data to a new file path.bak-TIME (path.bak-TIME-N if
// that exists: an older backup is never overwritten) and returns its name.
func writeBackup(path string, data []byte) (string, error) {
	stem := path + ".bak-" + time.Now().UTC().Format("20060102T150405Z")
	for i := 0; i < 100; i++ {
		name := stem
		if i > 0 {
			name = fmt.Sprintf("%s-%d", stem, i)
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if os.IsExist(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return "", err
		}
		return name, f.Close()
	}
	return "", fmt.Errorf("too many backups named %s-N", stem)
}
