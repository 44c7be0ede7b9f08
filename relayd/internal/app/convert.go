package app

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// convertCommand turns a data directory's SQLite store into a journal store.
func convertCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "convert",
		Usage: "turn the SQLite store in the data directory into a journal store (stop relayd first)",
		Description: `Reads everything relay.db holds — sessions, messages, every mailbox with its
seqs, acks, delivery and read times, the send refs that recognise retries, the
operator's holds — and writes it as relay.journal, the journal store's file. relay.db
and its -wal and -shm files move into a folder beside it, sqlite-<time>, untouched:
to go back, stop relayd, move them back and remove relay.journal. relayd must not be
running on the directory (its lock says so). Then start relayd: by default (--store
auto) it opens the store the directory holds, now the journal; one started with --store
sqlite must drop it, or say --store journal. docs/operations.md, "The journal store",
says what changes.

Examples:
   relayd convert
   relayd convert --data-dir ~/relay-data`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", EnvVars: []string{"RELAY_DATA_DIR"},
				Usage: "`DIR` holding the SQLite store (default: $RELAY_HOME/data, RELAY_HOME defaults to ~/claude-relay)"},
		},
		Action: func(c *cli.Context) error {
			dir, err := dataDir(c)
			if err != nil {
				return err
			}
			got, err := store.ConvertToJournal(c.Context, dir)
			if err != nil {
				return cli.Exit("relayd convert: "+err.Error(), 1)
			}
			fmt.Fprintf(stdout, "wrote %s: %d sessions, %d messages in %d mailboxes, %d send refs, %d holds\n", got.Journal, got.Sessions, got.Messages, got.Mailboxes, got.Refs, got.Holds)
			fmt.Fprintf(stdout, "the SQLite files are kept in %s\n", got.Aside)
			fmt.Fprintln(stdout, "start relayd: it opens the journal by default (--store auto); drop --store sqlite (or RELAY_STORE=sqlite) where its service sets it, or say --store journal")
			return nil
		},
	}
}
