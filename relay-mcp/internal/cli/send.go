package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/tools"
	ucli "github.com/urfave/cli/v2"
)

func sendCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:      "send",
		Usage:     "send one message: relay-mcp send CC-2 'tests pass' (TO: id, ids separated by commas, or '*'; TEXT '-' reads stdin)",
		ArgsUsage: "TO TEXT",
		Description: `Sends as --as, else as this shell's session id (CLAUDE_RELAY_SESSION_ID,
--client-id, RELAY_CLIENT_ID), else as cli-HOST. Prints the message id and
each recipient's outcome (delivered, queued, unknown, full). It never takes
an id over from a live session unless --takeover is given (exit 7).

A send is safe to retry: if the connection drops before the relay answers,
send reconnects and resends it with the same ref, and the relay delivers it
once. Across runs, pass the same --ref (and --as) to get the same guarantee.

Examples:
   relay-mcp send CC-2 'tests pass on main'
   relay-mcp send CC-2,CODEX 'rebased; please pull'
   relay-mcp send '*' 'relay restarts in 5 minutes'
   git log -1 | relay-mcp send --thread release CC-2 -
   relay-mcp send --as CC-1 --ref deploy-42 CC-2 'deployed'   # rerun-safe

Exit codes: 0 sent, 2 usage, 3 relay unreachable (or not confirmed),
4 not stored for some recipient, 5 refused by the relay, 7 the --as id is online.`,
		Flags: []ucli.Flag{
			asFlag("the session id (CLAUDE_RELAY_SESSION_ID, --client-id, RELAY_CLIENT_ID); else cli-HOST, or cli-HOST-PID while another command uses cli-HOST"), takeoverFlag(), timeoutFlag(), jsonFlag(),
			&ucli.StringFlag{Name: "thread", DefaultText: "none", Usage: "conversation name"},
			&ucli.StringFlag{Name: "reply-to", DefaultText: "none", Usage: "id of the message this answers"},
			&ucli.StringFlag{Name: "ref", DefaultText: "a random ref", Usage: "the send's ref (up to 64 characters): a rerun with the same --as, --ref and text is delivered once"},
			&ucli.BoolFlag{Name: "queue-if-unknown", Usage: "keep the message for an id the relay has never seen"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() < 2 {
				return exitf(ExitUsage, "usage: relay-mcp send TO TEXT")
			}
			choices, err := cliChoices(c, true)
			if err != nil {
				return err
			}
			to, err := tools.ParseTo(c.Args().First(), "")
			if err != nil {
				return exitf(ExitUsage, "%v", err)
			}
			ref := c.String("ref")
			if ref == "" {
				ref = link.NewRef()
			} else if len(ref) > protocol.MaxIDLen {
				return exitf(ExitUsage, "--ref is longer than %d characters", protocol.MaxIDLen)
			}
			if rt := c.String("reply-to"); rt != "" {
				if err := protocol.ValidateMessageID(rt); err != nil {
					return exitf(ExitUsage, "--reply-to: %v", err)
				}
			}
			text := strings.Join(c.Args().Slice()[1:], " ")
			if text == "-" {
				b, err := readAll(s)
				if err != nil {
					return exitf(ExitError, "read stdin: %v", err)
				}
				text = b
			}
			if text == "" {
				return exitf(ExitUsage, "nothing to send: TEXT is empty")
			}
			cfg, err := loadCLIConfig(c, s)
			if err != nil {
				return err
			}
			timeout := c.Duration("timeout")
			cl, err := dial(c, cfg, choices, dialOptions{timeout: timeout, quiet: true, takeover: c.Bool("takeover")})
			if err != nil {
				return err
			}
			defer cl.close()
			send := &protocol.Send{Ref: ref, To: to, Body: text, Thread: c.String("thread"), ReplyTo: c.String("reply-to"), QueueIfUnknown: c.Bool("queue-if-unknown")}
			acc, err := sendRetrying(c.Context, cl.l, send, timeout+5*time.Second)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				printJSON(s, acc)
			} else {
				fmt.Fprintf(s.Stdout, "%s", acc.ID)
				for _, o := range acc.Recipients {
					fmt.Fprintf(s.Stdout, " %s=%s", o.ID, o.Status)
				}
				if len(acc.Recipients) == 0 {
					fmt.Fprint(s.Stdout, " (nobody else online)")
				}
				fmt.Fprintln(s.Stdout)
			}
			if w := tools.LoopNudge(acc.Warning); w != "" {
				fmt.Fprintf(s.Stderr, "relay-mcp: %s\n", w)
			}
			if _, unread, _ := cl.in.Counts(); unread > 0 {
				fmt.Fprintf(s.Stderr, "relay-mcp: %d unread message(s) for %s: relay-mcp receive --id %s\n", unread, cl.id, cl.id)
			}
			for _, o := range acc.Recipients {
				if o.Status == protocol.StatusUnknown || o.Status == protocol.StatusFull {
					return exitf(ExitNotAll, "not stored for %s (%s)", o.ID, o.Status)
				}
			}
			return nil
		},
	}
}

// sendRetrying sends f and waits for its accepted. When the connection drops
// first, it waits for the link to reconnect and sends f again with the same
// ref, which the relay answers with the original accepted (no second
// delivery), until within has passed.
func sendRetrying(ctx context.Context, l *link.Link, f *protocol.Send, within time.Duration) (*protocol.Accepted, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	unsure := false
	for {
		ans, err := l.Request(ctx, f.Ref, f)
		var re *link.RelayError
		switch {
		case err == nil:
			if acc, ok := ans.(*protocol.Accepted); ok {
				return acc, nil
			}
			return nil, exitf(ExitError, "relay answered send with %s", ans.Type())
		case errors.As(err, &re) && re.Frame.Code == protocol.CodeRateLimited:
			d := max(time.Duration(re.Frame.RetryAfterMS)*time.Millisecond, 100*time.Millisecond)
			select {
			case <-time.After(d):
				continue
			case <-ctx.Done():
			}
		case errors.As(err, &re):
			return nil, exitf(ExitError, "not sent: %v", err)
		case errors.Is(err, link.ErrDisconnected):
			unsure = true
			fallthrough
		case errors.Is(err, link.ErrOffline):
			if werr := waitConnected(ctx, l, time.Until(deadlineOf(ctx)), false); werr == nil {
				continue
			}
		}
		if !unsure {
			return nil, exitf(ExitUnreachable, "not sent: %s", offlineReason(l))
		}
		return nil, exitf(ExitUnreachable, "not confirmed: the connection to the relay dropped after the message was written, so it may have been delivered (%s). Rerunning with --as %s --ref %s is safe: the relay delivers a send with a ref it has seen once", offlineReason(l), l.ClientID(), f.Ref)
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Minute)
	}
	return d
}

func offlineReason(l *link.Link) string {
	st := l.Status()
	switch {
	case st.StopReason != "":
		return st.StopReason
	case st.LastError != "":
		return st.LastError
	}
	return "relay not reachable at " + st.URL
}

func readAll(s Streams) (string, error) {
	var b strings.Builder
	sc := bufio.NewScanner(s.Stdin)
	sc.Buffer(make([]byte, 64<<10), protocol.DefaultMaxBodyBytes)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n"), sc.Err()
}
