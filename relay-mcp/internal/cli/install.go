package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/hook"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/install"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	ucli "github.com/urfave/cli/v2"
)

func installCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:      "install",
		Usage:     "print, or with --write merge, relay-mcp's entry into an agent client's MCP config (claude, codex, gemini, cursor)",
		ArgsUsage: "claude|codex|gemini|cursor",
		Description: `Without --write, prints the entry to add (stdout) and where it goes
(stderr). With --write, merges it into the client's config file, keeping
every other key and line, and copies the old file to FILE.bak-DATE-TIME
first; running it again changes nothing and says so.

claude --hooks instead merges relay-mcp's SessionStart, UserPromptSubmit,
PostToolUse and Stop hooks ("relay-mcp hook claude-code EVENT") into Claude
Code's settings (~/.claude/settings.json, or --settings FILE), so a session
sees its relay mail at its next prompt or tool call without being asked.
Every other setting and hook is kept; relay-mcp's hooks from an earlier
install are replaced. Without --write it prints the merged file.

  claude   ~/.claude.json          mcpServers.relay   (--project: ./.mcp.json)
  codex    ~/.codex/config.toml    [mcp_servers.relay]
  gemini   ~/.gemini/settings.json mcpServers.relay
  cursor   ~/.cursor/mcp.json      mcpServers.relay

The entry runs this relay-mcp by its absolute path (--command to name
another, e.g. a symlink that survives upgrades; a bare name such as
relay-mcp is left for the client to find on its PATH) and sets RELAY_URL when it
is not the default, RELAY_TOKEN_FILE, RELAY_CA_FILE and RELAY_HOME when
given. For codex and gemini it also sets RELAY_AGENT and lets the agent call
relay-mcp's tools without asking (Codex: default_tools_approval_mode =
"approve", Gemini: trust; headless runs refuse or hide the tools otherwise),
and for codex lists env_vars (CLAUDE_RELAY_SESSION_ID, RELAY_CLIENT_ID,
RELAY_TOKEN), which Codex forwards from its own environment. A token is never written into a config file: keep it in a file
(chmod 600) and pass --token-file. Claude Code rewrites ~/.claude.json while
it runs: write with its sessions closed (or use the printed claude mcp add).

Examples:
   relay-mcp install claude                        # show the entry
   relay-mcp install claude --write                # add it to ~/.claude.json
   relay-mcp install claude --write --project      # ./.mcp.json, for everyone on the repo
   RELAY_URL=ws://127.0.0.1:9999 relay-mcp install codex --write
   relay-mcp --token-file ~/.config/claude-relay/token install gemini --write
   relay-mcp install cursor --command /opt/homebrew/bin/relay-mcp --write
   relay-mcp install claude --hooks --write        # the hooks, in ~/.claude/settings.json
   relay-mcp install claude --hooks --on-stop block --write
   relay-mcp install claude --hooks --settings .claude/settings.json --write   # one project`,
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "write", Usage: "merge the entry into the client's config file (a backup is kept)"},
			&ucli.BoolFlag{Name: "project", Usage: "claude only: write ./.mcp.json (shared with the repository) instead of ~/.claude.json"},
			&ucli.StringFlag{Name: "command", DefaultText: "this relay-mcp's absolute path (--hooks: relay-mcp when it is this binary on PATH)", Usage: "the relay-mcp the client should run"},
			&ucli.BoolFlag{Name: "hooks", Usage: "claude only: install relay-mcp's hooks into Claude Code's settings instead of the MCP server entry"},
			&ucli.StringFlag{Name: "settings", DefaultText: "~/.claude/settings.json", Usage: "with --hooks: the Claude Code settings file to change"},
			&ucli.StringFlag{Name: "on-stop", Value: hook.StopNotify, Usage: "with --hooks: the Stop hook's --on-stop: block, notify or off"},
		},
		Action: func(c *ucli.Context) error { return runInstall(c, s, time.Now()) },
	}
}

// installOptions are install's flags, given before or after the client
// name (urfave/cli stops parsing flags at the first argument; people type
// `relay-mcp install claude --write`).
type installOptions struct {
	client, command       string
	write, project        bool
	hooks                 bool   // install claude --hooks
	settings, onStop      string // with --hooks
	hookFlagsWithoutHooks bool   // --settings or --on-stop given
}

func parseInstallArgs(c *ucli.Context) (installOptions, error) {
	o := installOptions{write: c.Bool("write"), project: c.Bool("project"), command: c.String("command"),
		hooks: c.Bool("hooks"), settings: c.String("settings"), onStop: c.String("on-stop")}
	o.hookFlagsWithoutHooks = c.IsSet("settings") || c.IsSet("on-stop")
	args := c.Args().Slice()
	if len(args) == 0 {
		return o, exitf(ExitUsage, "usage: relay-mcp install claude|codex|gemini|cursor [--write]")
	}
	o.client = args[0]
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&o.write, "write", o.write, "")
	fs.BoolVar(&o.project, "project", o.project, "")
	fs.StringVar(&o.command, "command", o.command, "")
	fs.BoolVar(&o.hooks, "hooks", o.hooks, "")
	fs.StringVar(&o.settings, "settings", o.settings, "")
	fs.StringVar(&o.onStop, "on-stop", o.onStop, "")
	if err := fs.Parse(args[1:]); err != nil {
		return o, exitf(ExitUsage, "install: %v (see relay-mcp install --help)", err)
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "settings" || f.Name == "on-stop" {
			o.hookFlagsWithoutHooks = true
		}
	})
	if o.hooks {
		o.hookFlagsWithoutHooks = false
	}
	if fs.NArg() > 0 {
		return o, exitf(ExitUsage, "usage: relay-mcp install claude|codex|gemini|cursor [--write] (one client at a time; got %q too)", fs.Arg(0))
	}
	return o, nil
}

func runInstall(c *ucli.Context, s Streams, now time.Time) error {
	o, err := parseInstallArgs(c)
	if err != nil {
		return err
	}
	cl, err := install.Lookup(o.client)
	if err != nil {
		return exitf(ExitUsage, "%v", err)
	}
	if o.hooks {
		if cl.Name != "claude" {
			return exitf(ExitUsage, "--hooks: only Claude Code's hooks are installed by this command (for %s, see docs/agents.md)", cl.Title)
		}
		return runInstallHooks(s, o)
	}
	if o.hookFlagsWithoutHooks {
		return exitf(ExitUsage, "--settings and --on-stop go with --hooks: relay-mcp install claude --hooks --write")
	}
	project := o.project
	if project && cl.ProjectFile == "" {
		return exitf(ExitUsage, "--project: %s has no project config file; drop --project", cl.Title)
	}
	cfg, err := loadCLIConfig(c, s)
	if err != nil {
		return err
	}
	if cfg.closer != nil {
		defer cfg.closer.Close()
	}
	e, err := installEntry(c, cfg, o.command)
	if err != nil {
		return err
	}
	if cfg.token != "" && c.String("token-file") == "" {
		fmt.Fprintln(s.Stderr, "note: RELAY_TOKEN is set but is not written into the config (it would sit there in plain text): save it in a file (chmod 600) and run again with --token-file FILE, or set RELAY_TOKEN in the agent's environment")
	}

	var path, shown string
	if project {
		cwd, err := os.Getwd()
		if err != nil {
			return exitf(ExitError, "%v", err)
		}
		path, shown = filepath.Join(cwd, cl.ProjectFile), "./"+cl.ProjectFile
	} else {
		home, err := os.UserHomeDir()
		if err != nil {
			return exitf(ExitUsage, "cannot find the home directory (set HOME): %v", err)
		}
		path, shown = filepath.Join(home, cl.File), "~/"+filepath.ToSlash(cl.File)
	}

	if !o.write {
		fmt.Fprint(s.Stdout, cl.Snippet(e))
		fmt.Fprintf(s.Stderr, "# %s: merge this into %s (%s), or run: relay-mcp install %s --write", cl.Title, shown, cl.KeyName(), strings.Join(o.hintArgs(), " "))
		if add := cl.AddCommand(e, project); add != "" {
			fmt.Fprintf(s.Stderr, "\n# or: %s", add)
		}
		fmt.Fprintln(s.Stderr)
		return nil
	}
	res, err := install.UpdateFile(path, now, func(old []byte) ([]byte, error) {
		out, err := cl.Apply(old, e)
		if err != nil {
			return nil, fmt.Errorf("%s is not a config file this command can edit (%v) — nothing was changed; fix or move it, then run again", shown, err)
		}
		return out, nil
	})
	if err != nil {
		return exitf(ExitError, "%v", err)
	}
	switch {
	case !res.Changed:
		fmt.Fprintf(s.Stdout, "%s already has this %s entry; nothing changed\n", shown, cl.KeyName())
		return nil
	case res.Created:
		fmt.Fprintf(s.Stdout, "created %s with %s → %s\n", shown, cl.KeyName(), e.Command)
	default:
		fmt.Fprintf(s.Stdout, "updated %s: %s → %s (every other setting kept; the old file is %s)\n", shown, cl.KeyName(), e.Command, filepath.Base(res.Backup))
	}
	fmt.Fprintf(s.Stdout, "%s; then check the relay with: relay-mcp doctor\n", cl.Reload)
	return nil
}

// hintArgs are the client name and flags to repeat in a hint.
func (o installOptions) hintArgs() []string {
	args := []string{o.client}
	if o.project {
		args = append(args, "--project")
	}
	if o.command != "" {
		args = append(args, "--command", shellQuoteArg(o.command))
	}
	return args
}

func shellQuoteArg(s string) string {
	if strings.ContainsAny(s, " '\"$`\\") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

// installEntry is how the client should start relay-mcp: by absolute path,
// with the relay settings this command was given (never the token itself).
func installEntry(c *ucli.Context, cfg *config, cmd string) (install.Entry, error) {
	if cmd == "" {
		exe, err := os.Executable()
		if err != nil {
			return install.Entry{}, exitf(ExitError, "cannot find this program's path (%v): pass --command /path/to/relay-mcp", err)
		}
		cmd = exe
	}
	// A bare name (--command relay-mcp) is for the client to find on its
	// PATH, as in a hand-written entry; a path is made absolute, since the
	// client does not start in this directory.
	if strings.ContainsRune(cmd, filepath.Separator) || strings.ContainsRune(cmd, '/') {
		abs, err := filepath.Abs(cmd)
		if err != nil {
			return install.Entry{}, exitf(ExitUsage, "--command: %v", err)
		}
		cmd = abs
	}
	e := install.Entry{Command: cmd, Args: []string{}, Env: map[string]string{}}
	if len(cfg.urls) > 1 || cfg.url != link.DefaultURL {
		e.Env["RELAY_URL"] = strings.Join(cfg.urls, ",") // a cluster's nodes: the whole list
	}
	for _, f := range []struct{ flag, env string }{{"token-file", "RELAY_TOKEN_FILE"}, {"ca-file", "RELAY_CA_FILE"}, {"home", EnvHome}} {
		if v := c.String(f.flag); v != "" {
			p, err := filepath.Abs(v)
			if err != nil {
				return install.Entry{}, exitf(ExitUsage, "--%s: %v", f.flag, err)
			}
			e.Env[f.env] = p
		}
	}
	return e, nil
}
