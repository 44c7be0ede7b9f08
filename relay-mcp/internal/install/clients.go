// Package install puts relay-mcp into the agent clients' own files: its
// entry in their MCP configuration (Claude Code, Codex CLI, Gemini CLI,
// Cursor) and, for Claude Code, its hooks in settings.json (claude_hooks.go)
// — keeping every other setting of those files and a backup of what was
// there.
package install

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// ServerName is the name relay-mcp is registered under in every client.
const ServerName = "relay"

// Entry is how a client starts relay-mcp.
type Entry struct {
	Command string
	Args    []string
	Env     map[string]string
	// PassEnv names variables the client hands relay-mcp from its own
	// environment (Codex's env_vars: Codex passes MCP servers only a short
	// fixed list otherwise).
	PassEnv []string
	// Approve lets the client call relay-mcp's tools without asking each
	// time: Codex's default_tools_approval_mode = "approve" (without it a
	// headless `codex exec` refuses every MCP call), Gemini CLI's trust.
	Approve bool
}

// passThrough are the variables Codex must forward for relay-mcp to know
// its session (CLAUDE_RELAY_SESSION_ID, RELAY_CLIENT_ID) and a token kept
// in the environment.
var passThrough = []string{"CLAUDE_RELAY_SESSION_ID", "RELAY_CLIENT_ID", "RELAY_TOKEN"}

// forClient adds to e what client c needs besides command, args and env:
// the agent kind (relay-mcp cannot guess it from an environment the client
// filters), Codex's pass-through variables, and tool approval.
func (c Client) forClient(e Entry) Entry {
	if c.Name != "codex" && c.Name != "gemini" {
		return e
	}
	env := make(map[string]string, len(e.Env)+1)
	for k, v := range e.Env {
		env[k] = v
	}
	if env["RELAY_AGENT"] == "" {
		env["RELAY_AGENT"] = c.Name
	}
	e.Env, e.Approve = env, true
	if c.Name == "codex" {
		e.PassEnv = passThrough
	}
	return e
}

// Client is one agent client's MCP configuration file.
type Client struct {
	Name  string // claude, codex, gemini, cursor
	Title string // Claude Code …
	// File is the config file, relative to the home directory (or, for
	// ProjectFile, to the project directory).
	File        string
	ProjectFile string // Claude Code's .mcp.json; "" when the client has none
	// Key is where the entry goes: JSON object keys, or a TOML table.
	Key    []string
	TOML   bool
	Reload string // what the user does next
}

// Clients lists the supported clients.
var Clients = []Client{
	{Name: "claude", Title: "Claude Code", File: ".claude.json", ProjectFile: ".mcp.json", Key: []string{"mcpServers", ServerName},
		Reload: "start a new Claude Code session (or run /mcp in one) to load it"},
	{Name: "codex", Title: "Codex CLI", File: filepath.Join(".codex", "config.toml"), Key: []string{"mcp_servers", ServerName}, TOML: true,
		Reload: "start a new Codex session to load it"},
	{Name: "gemini", Title: "Gemini CLI", File: filepath.Join(".gemini", "settings.json"), Key: []string{"mcpServers", ServerName},
		Reload: "start a new Gemini CLI session (or run /mcp) to load it"},
	{Name: "cursor", Title: "Cursor", File: filepath.Join(".cursor", "mcp.json"), Key: []string{"mcpServers", ServerName},
		Reload: "Cursor picks it up in Settings → MCP (toggle relay off and on if it was there)"},
}

// Lookup finds a client by name.
func Lookup(name string) (Client, error) {
	var names []string
	for _, c := range Clients {
		if c.Name == strings.ToLower(name) {
			return c, nil
		}
		names = append(names, c.Name)
	}
	return Client{}, fmt.Errorf("unknown client %q: use one of %s", name, strings.Join(names, ", "))
}

// KeyName is the entry's place as people write it: mcpServers.relay.
func (c Client) KeyName() string { return strings.Join(c.Key, ".") }

// jsonEntry is the entry in the JSON clients' schema.
func (c Client) jsonEntry(e Entry) any {
	env := e.Env
	if env == nil {
		env = map[string]string{}
	}
	args := e.Args
	if args == nil {
		args = []string{}
	}
	if c.Name == "gemini" {
		return struct {
			Command string            `json:"command"`
			Args    []string          `json:"args"`
			Env     map[string]string `json:"env"`
			Trust   bool              `json:"trust,omitempty"`
		}{e.Command, args, env, e.Approve}
	}
	if c.Name == "claude" {
		return struct {
			Type    string            `json:"type"`
			Command string            `json:"command"`
			Args    []string          `json:"args"`
			Env     map[string]string `json:"env"`
		}{"stdio", e.Command, args, env}
	}
	return struct {
		Command string            `json:"command"`
		Args    []string          `json:"args"`
		Env     map[string]string `json:"env"`
	}{e.Command, args, env}
}

// Snippet is the entry as it looks in the client's file: what to paste.
func (c Client) Snippet(e Entry) string {
	e = c.forClient(e)
	if c.TOML {
		return TOMLTable(c.KeyName(), e)
	}
	b, _ := EditJSON(nil, c.jsonEntry(e), c.Key...)
	return string(b)
}

// Apply returns the file's contents with the entry merged in.
func (c Client) Apply(old []byte, e Entry) ([]byte, error) {
	e = c.forClient(e)
	if c.TOML {
		return EditTOMLTable(old, c.KeyName(), e)
	}
	return EditJSON(old, c.jsonEntry(e), c.Key...)
}

// AddCommand is the client's own command for the same entry, when it has
// one that takes env (claude mcp add).
func (c Client) AddCommand(e Entry, project bool) string {
	if c.Name != "claude" {
		return ""
	}
	scope := "user"
	if project {
		scope = "project"
	}
	parts := []string{"claude", "mcp", "add", "-s", scope}
	keys := make([]string, 0, len(e.Env))
	for k := range e.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, "-e", shellQuote(k+"="+e.Env[k]))
	}
	parts = append(parts, ServerName, "--", shellQuote(e.Command))
	for _, a := range e.Args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-=:+,@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
