package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/claude-relay/claude-relay/internal/atomicfile"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/hook"
)

// hookMarker identifies the hook entries relay-mcp wrote, so installing
// again replaces them instead of adding duplicates.
const hookMarker = " hook claude-code "

// hookTimeoutSeconds is the timeout written for each hook: Claude Code's
// limit, far above the milliseconds a hook takes, so a stuck hook still
// ends.
const hookTimeoutSeconds = 5

// wakeTimeoutSeconds is the timeout written for the wake listener: its
// idle limit and a margin, so Claude Code never cuts off a listener that
// is still within its limit (it stands down by itself first).
var wakeTimeoutSeconds = int((hook.DefaultIdleLimit + 5*time.Minute) / time.Second)

// ClaudeHooks returns the "hooks" entries relay-mcp installs: one command
// per event, and on Stop the wake listener (async, asyncRewake: it waits
// in the background and starts a turn when mail comes), bin being how
// Claude Code should run relay-mcp.
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
		if ev == hook.EventStop {
			group["hooks"] = append(group["hooks"].([]any), map[string]any{
				"type": "command", "command": bin + hookMarker + "--wake " + ev,
				"timeout": wakeTimeoutSeconds, "async": true, "asyncRewake": true,
			})
		}
		if ev == hook.EventPostToolUse {
			group["matcher"] = "*" // after every tool
		}
		out[ev] = []any{group}
	}
	return out
}

// MergeClaudeHooks returns settings (the content of a Claude Code settings
// file, empty for none) with relay-mcp's hook entries: every other key and
// every other hook is kept (keys in their order, values as written, through
// Object); relay-mcp entries written before are replaced.
func MergeClaudeHooks(settings []byte, bin, onStop string) ([]byte, error) {
	doc, err := ParseObject(settings)
	if err != nil {
		return nil, fmt.Errorf("the settings file is not valid JSON (%v): fix it or move it aside, then run this again", err)
	}
	hooks, err := doc.Object("hooks")
	if err != nil {
		return nil, fmt.Errorf(`"hooks" in the settings file is not an object: fix it by hand, then run this again`)
	}
	ours := ClaudeHooks(bin, onStop)
	for _, ev := range slices.Sorted(maps.Keys(ours)) {
		var old []any
		if raw, ok := hooks.Raw(ev); ok {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber() // numbers stay as written
			if err := dec.Decode(&old); err != nil {
				return nil, fmt.Errorf(`"hooks.%s" in the settings file is not a list: fix it by hand, then run this again`, ev)
			}
		}
		var kept []any
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
		if err := hooks.Set(ev, append(kept, ours[ev].([]any)...)); err != nil {
			return nil, err
		}
	}
	if err := doc.Set("hooks", hooks); err != nil {
		return nil, err
	}
	return doc.Indented(), nil
}

// ClaudeHooksFile merges relay-mcp's hooks into the settings file at path.
// Without write it only returns the new content. With write, an existing
// file is first copied to path.bak-TIME and the new one is renamed into
// place (a crash leaves the old file or the new one, never half of one).
func ClaudeHooksFile(path, bin, onStop string, write bool) ([]byte, string, error) {
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
	if err := atomicfile.Write(path, merged, 0o600); err != nil {
		return nil, "", err
	}
	return merged, backup, nil
}

// ClaudeSettingsPath is ~/.claude/settings.json, or settings.json in
// $CLAUDE_CONFIG_DIR when set.
func ClaudeSettingsPath() (string, error) {
	if d := os.Getenv("CLAUDE_CONFIG_DIR"); d != "" {
		return filepath.Join(d, "settings.json"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, ".claude", "settings.json"), nil
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
