// Package agentsetup reads the agents' configuration files (Claude Code,
// Codex CLI, Gemini CLI, Cursor …) and says which of them start relay-mcp
// and whether relay-mcp's Claude Code hooks are installed: both doctors
// (relayd doctor, relay-mcp doctor) report it.
package agentsetup

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Line is one finding of Check: status is "OK" or "WARN".
type Line struct {
	Status, What, Fix string
}

// Env is where Check looks: the home directory, the current
// directory (for a project's .mcp.json) and the environment.
type Env struct {
	Home, Cwd string
	Getenv    func(string) string // nil: os.Getenv
}

// Check reads the agents' configuration files (changing none) and says
// which agents start relay-mcp as an MCP server, whether each entry's
// command can be found, and whether relay-mcp's Claude Code hooks are
// installed.
func Check(e Env) []Line {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	short := func(p string) string {
		if e.Home != "" && strings.HasPrefix(p, e.Home+string(filepath.Separator)) {
			return "~" + p[len(e.Home):]
		}
		return p
	}
	type found struct{ where, command string }
	var entries []found
	addJSON := func(title, path string, keys ...string) {
		for _, cmd := range jsonServers(path, keys...) {
			entries = append(entries, found{title + " (" + short(path) + ")", cmd})
		}
	}
	claudeJSON := filepath.Join(e.Home, ".claude.json")
	if d := e.Getenv("CLAUDE_CONFIG_DIR"); d != "" {
		claudeJSON = filepath.Join(d, ".claude.json")
	}
	addJSON("Claude Code", claudeJSON)
	for _, p := range claudeProjects(claudeJSON) {
		for _, cmd := range jsonServers(claudeJSON, "projects", p) {
			entries = append(entries, found{"Claude Code, project " + short(p) + " (" + short(claudeJSON) + ")", cmd})
		}
	}
	if e.Cwd != "" {
		addJSON("Claude Code, this project", filepath.Join(e.Cwd, ".mcp.json"))
	}
	codexDir := filepath.Join(e.Home, ".codex")
	if d := e.Getenv("CODEX_HOME"); d != "" {
		codexDir = d
	}
	codexTOML := filepath.Join(codexDir, "config.toml")
	codexCmds, codexNotify := codexConfig(codexTOML)
	for _, cmd := range codexCmds {
		entries = append(entries, found{"Codex CLI (" + short(codexTOML) + ")", cmd})
	}
	addJSON("Gemini CLI", filepath.Join(e.Home, ".gemini", "settings.json"))
	addJSON("Cursor", filepath.Join(e.Home, ".cursor", "mcp.json"))

	var out []Line
	if len(entries) == 0 {
		out = append(out, Line{"WARN", "agents: no agent starts relay-mcp (looked in ~/.claude.json, ./.mcp.json, ~/.codex/config.toml, ~/.gemini/settings.json, ~/.cursor/mcp.json)",
			"add it: claude mcp add -s user relay -- relay-mcp (or relay-mcp install claude|codex|gemini|cursor --write)"})
	}
	for _, f := range entries {
		bin := strings.Fields(f.command)
		if len(bin) > 0 && !commandFound(bin[0]) {
			out = append(out, Line{"WARN", "agents: " + f.where + " starts relay-mcp as " + f.command + ", which is not there",
				"install relay-mcp (make install) or fix the command: relay-mcp install ... --write writes this binary's path"})
			continue
		}
		out = append(out, Line{"OK", "agents: " + f.where + " starts relay-mcp (" + f.command + ")", ""})
	}

	settings := filepath.Join(e.Home, ".claude", "settings.json")
	if d := e.Getenv("CLAUDE_CONFIG_DIR"); d != "" {
		settings = filepath.Join(d, "settings.json")
	}
	events := claudeHookEvents(settings)
	switch {
	case len(events) > 0:
		out = append(out, Line{"OK", "hooks: relay-mcp's Claude Code hooks are installed in " + short(settings) + " (" + strings.Join(events, ", ") + ")", ""})
	default:
		out = append(out, Line{"WARN", "hooks: relay-mcp's Claude Code hooks are not installed (" + short(settings) + "): a Claude Code session sees mail only when it calls relay_receive",
			"relay-mcp install claude --hooks --write"})
	}
	if codexNotify {
		out = append(out, Line{"OK", "hooks: Codex's notify runs relay-mcp hook codex (" + short(codexTOML) + ")", ""})
	}
	return out
}

// isRelayMCP says whether a command line starts relay-mcp.
func isRelayMCP(command string, args []string) bool {
	if strings.TrimSuffix(filepath.Base(command), ".exe") == "relay-mcp" {
		return true
	}
	for _, a := range args {
		if strings.Contains(a, "relay-mcp") {
			return true
		}
	}
	return false
}

func commandFound(bin string) bool {
	if strings.ContainsRune(bin, filepath.Separator) {
		_, err := os.Stat(bin)
		return err == nil
	}
	_, err := exec.LookPath(bin)
	return err == nil
}

// readJSON decodes a JSON file into a map; nil when it is missing or not JSON.
func readJSON(path string) map[string]any {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// jsonServers returns the command lines of the mcpServers entries (under
// the object at keys) that start relay-mcp.
func jsonServers(path string, keys ...string) []string {
	m := readJSON(path)
	for _, k := range keys {
		m, _ = m[k].(map[string]any)
	}
	servers, _ := m["mcpServers"].(map[string]any)
	var out []string
	for _, name := range sortedKeys(servers) {
		s, _ := servers[name].(map[string]any)
		cmd, _ := s["command"].(string)
		var args []string
		list, _ := s["args"].([]any)
		for _, a := range list {
			if as, ok := a.(string); ok {
				args = append(args, as)
			}
		}
		if cmd != "" && isRelayMCP(cmd, args) {
			out = append(out, strings.TrimSpace(cmd+" "+strings.Join(args, " ")))
		}
	}
	return out
}

// claudeProjects lists the projects of ~/.claude.json that have MCP servers.
func claudeProjects(path string) []string {
	ps, _ := readJSON(path)["projects"].(map[string]any)
	var out []string
	for _, p := range sortedKeys(ps) {
		if o, ok := ps[p].(map[string]any); ok && o["mcpServers"] != nil {
			out = append(out, p)
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// claudeHookEvents lists the Claude Code hook events whose command runs
// relay-mcp hook.
func claudeHookEvents(path string) []string {
	hooks, _ := readJSON(path)["hooks"].(map[string]any)
	var out []string
	for _, ev := range sortedKeys(hooks) {
		groups, _ := hooks[ev].([]any)
	event:
		for _, g := range groups {
			gm, _ := g.(map[string]any)
			hs, _ := gm["hooks"].([]any)
			for _, h := range hs {
				hm, _ := h.(map[string]any)
				if c, _ := hm["command"].(string); strings.Contains(c, "relay-mcp") && strings.Contains(c, "hook") {
					out = append(out, ev)
					break event
				}
			}
		}
	}
	return out
}

// codexConfig reads Codex's config.toml as text: the command lines of
// [mcp_servers.*] tables that start relay-mcp, and whether notify runs
// relay-mcp hook codex.
func codexConfig(path string) (cmds []string, notify bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	table := ""
	cmd, args := "", ""
	flush := func() {
		if strings.HasPrefix(table, "mcp_servers.") && !strings.Contains(strings.TrimPrefix(table, "mcp_servers."), ".") && cmd != "" {
			var as []string
			if args != "" {
				as = []string{args}
			}
			if isRelayMCP(cmd, as) {
				cmds = append(cmds, strings.TrimSpace(cmd+" "+strings.Join(tomlStrings(args), " ")))
			}
		}
		cmd, args = "", ""
	}
	for _, ln := range strings.Split(string(b), "\n") {
		ln = strings.TrimSpace(ln)
		if strings.HasPrefix(ln, "[") && !strings.HasPrefix(ln, "[[") {
			flush()
			table = strings.Trim(ln, "[] ")
			table = strings.ReplaceAll(table, `"`, "")
			continue
		}
		k, v, ok := strings.Cut(ln, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case table == "" && k == "notify":
			notify = strings.Contains(v, "relay-mcp") && strings.Contains(v, "codex")
		case k == "command":
			if s := tomlStrings(v); len(s) > 0 {
				cmd = s[0]
			}
		case k == "args":
			args = v
		}
	}
	flush()
	return cmds, notify
}

// tomlStrings returns the basic strings of a one-line TOML value: "a" or
// ["a", "b"].
func tomlStrings(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '"')
		if i < 0 {
			return out
		}
		v = v[i+1:]
		j := strings.IndexByte(v, '"')
		if j < 0 {
			return out
		}
		out = append(out, v[:j])
		v = v[j+1:]
	}
}
