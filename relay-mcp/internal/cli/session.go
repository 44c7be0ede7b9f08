package cli

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/registry"
	ucli "github.com/urfave/cli/v2"
)

func sessionCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "session",
		Usage: "manage this machine's session registry ($RELAY_HOME/sessions/registry.json)",
		Description: `Every relay-mcp server registers its id on start and marks it offline on
exit; claude-session registers an id before starting claude.

Examples:
   relay-mcp session register --cwd ~/src/app CC-1
   relay-mcp session list
   relay-mcp session list --json
   relay-mcp session remove CC-1          # exit 6 if there is no such id`,
		Subcommands: []*ucli.Command{
			{
				Name:      "register",
				Usage:     "register a session id (claude-session does this before starting the agent)",
				ArgsUsage: "ID",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "cwd", DefaultText: "the current directory", Usage: "working directory"},
				},
				Action: func(c *ucli.Context) error {
					cfg, err := loadConfig(c, s)
					if err != nil {
						return err
					}
					if c.NArg() != 1 {
						return exitf(ExitUsage, "usage: relay-mcp session register ID")
					}
					id := c.Args().First()
					if err := protocol.ValidateID(id); err != nil {
						return exitf(ExitUsage, "bad id: %v", err)
					}
					cwd := c.String("cwd")
					if cwd == "" {
						cwd, _ = os.Getwd()
					}
					host, _ := os.Hostname()
					reg := registry.Open(cfg.home, cfg.logger)
					if err := reg.Register(registry.Session{ID: id, Host: host, Cwd: cwd, Agent: cfg.agent, Label: cfg.label}); err != nil {
						return exitf(ExitError, "%v", err)
					}
					fmt.Fprintf(s.Stdout, "registered %s\n", id)
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list registered sessions",
				Flags: []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					cfg, err := loadConfig(c, s)
					if err != nil {
						return err
					}
					ls, err := registry.Open(cfg.home, cfg.logger).List()
					if err != nil {
						return exitf(ExitError, "%v", err)
					}
					if c.Bool("json") {
						return printJSON(s, ls)
					}
					if len(ls) == 0 {
						fmt.Fprintln(s.Stdout, "no sessions registered (claude-session ID registers one)")
						return nil
					}
					tw := tabwriter.NewWriter(s.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tSTATE\tAGENT\tPID\tLAST SEEN\tCWD")
					for _, x := range ls {
						state := "offline"
						if x.Online {
							state = "online"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", x.ID, state, x.Agent, x.PID, x.LastSeen.Local().Format(time.DateTime), x.Cwd)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "remove",
				Usage:     "remove a session id from the registry",
				ArgsUsage: "ID",
				Action: func(c *ucli.Context) error {
					cfg, err := loadConfig(c, s)
					if err != nil {
						return err
					}
					if c.NArg() != 1 {
						return exitf(ExitUsage, "usage: relay-mcp session remove ID")
					}
					if err := protocol.ValidateID(c.Args().First()); err != nil {
						return exitf(ExitUsage, "bad id: %v", err)
					}
					found, err := registry.Open(cfg.home, cfg.logger).Remove(c.Args().First())
					if err != nil {
						return exitf(ExitError, "%v", err)
					}
					if !found {
						return exitf(ExitNotFound, "no session %q in the registry", c.Args().First())
					}
					fmt.Fprintf(s.Stdout, "removed %s\n", c.Args().First())
					return nil
				},
			},
		},
	}
}
