package cli

import (
	"fmt"
	"os"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"
)

// ShellInit returns the shell functions for shell: claude-session ID
// [claude args…] sets CLAUDE_RELAY_SESSION_ID, registers the id and starts
// claude; claude-sessions lists the registry.
func ShellInit(shell string) (string, error) {
	switch shell {
	case "bash", "zsh", "sh":
		return `# claude-relay: eval "$(relay-mcp shell-init ` + shell + `)"
claude-session() {
  if [ -z "$1" ]; then echo "usage: claude-session ID [claude args...]" >&2; return 2; fi
  local id="$1"; shift
  relay-mcp session register "$id" >/dev/null || return $?
  CLAUDE_RELAY_SESSION_ID="$id" command claude "$@"
}
claude-sessions() { relay-mcp session list "$@"; }
`, nil
	case "fish":
		return `# claude-relay: relay-mcp shell-init fish | source
function claude-session --description 'start claude as a named relay session'
  if test (count $argv) -lt 1
    echo "usage: claude-session ID [claude args...]" >&2; return 2
  end
  set -l id $argv[1]
  relay-mcp session register $id >/dev/null; or return $status
  env CLAUDE_RELAY_SESSION_ID=$id claude $argv[2..-1]
end
function claude-sessions --description 'list relay sessions'
  relay-mcp session list $argv
end
`, nil
	}
	return "", fmt.Errorf("unknown shell %q: use bash, zsh or fish", shell)
}

func shellInitCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:      "shell-init",
		Usage:     "print the claude-session and claude-sessions functions: eval \"$(relay-mcp shell-init bash)\"",
		ArgsUsage: "[bash|zsh|fish]   (default: the shell named by $SHELL)",
		Description: `claude-session ID [claude args...] registers ID and starts claude with
CLAUDE_RELAY_SESSION_ID=ID, so its relay-mcp connects as ID;
claude-sessions lists the registry.

Examples:
   echo 'eval "$(relay-mcp shell-init bash)"' >> ~/.bashrc
   echo 'eval "$(relay-mcp shell-init zsh)"' >> ~/.zshrc
   echo 'relay-mcp shell-init fish | source' >> ~/.config/fish/config.fish
   claude-session CC-1 --continue`,
		Action: func(c *ucli.Context) error {
			sh := c.Args().First()
			if sh == "" {
				sh = filepath.Base(os.Getenv("SHELL"))
			}
			out, err := ShellInit(sh)
			if err != nil {
				return exitf(ExitUsage, "%v", err)
			}
			fmt.Fprint(s.Stdout, out)
			return nil
		},
	}
}
