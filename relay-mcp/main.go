// Command relay-mcp is the agent's side of claude-relay: a stdio MCP server
// that an agent (Claude Code, Codex CLI, Gemini CLI, Cursor …) spawns.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "relay-mcp: not built yet")
	os.Exit(1)
}
