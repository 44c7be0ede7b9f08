package cli

import (
	"context"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	ucli "github.com/urfave/cli/v2"
)

func peersCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "peers",
		Usage: "list the sessions online on the relay",
		Description: `Connects quietly as cli-HOST (or --as), asks the relay who is online and
prints everyone else.

Examples:
   relay-mcp peers
   relay-mcp peers --json | jq -r '.[].id'

Exit codes: 0, 2 usage, 3 relay unreachable, 5 refused by the relay.`,
		Flags: []ucli.Flag{asFlag("cli-HOST, or cli-HOST-PID while another command uses cli-HOST"), takeoverFlag(), timeoutFlag(), jsonFlag()},
		Action: func(c *ucli.Context) error {
			choices, err := cliChoices(c, false)
			if err != nil {
				return err
			}
			cfg, err := loadCLIConfig(c, s)
			if err != nil {
				return err
			}
			cl, err := dial(c, cfg, choices, dialOptions{timeout: c.Duration("timeout"), quiet: true, takeover: c.Bool("takeover")})
			if err != nil {
				return err
			}
			defer cl.close()
			ctx, cancel := context.WithTimeout(c.Context, 5*time.Second)
			defer cancel()
			ps, err := cl.l.RequestPeers(ctx)
			if err != nil {
				return exitf(ExitError, "%v", err)
			}
			var others []protocol.Peer
			for _, p := range ps {
				if p.ID != cl.id {
					others = append(others, p)
				}
			}
			sort.Slice(others, func(i, j int) bool { return others[i].ID < others[j].ID })
			if c.Bool("json") {
				if others == nil {
					others = []protocol.Peer{}
				}
				return printJSON(s, others)
			}
			tw := tabwriter.NewWriter(s.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAGENT\tHOST\tSINCE\tCWD")
			for _, p := range others {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Agent, p.Host, p.ConnectedSince.Local().Format(time.DateTime), p.Cwd)
			}
			return tw.Flush()
		},
	}
}
