// Command relay-mcp is the agent's side of claude-relay: a stdio MCP server
// that an agent (Claude Code, Codex CLI, Gemini CLI, Cursor …) spawns, plus
// subcommands for people and scripts. See `relay-mcp --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, cli.Streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
