package cli

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/tools"
	ucli "github.com/urfave/cli/v2"
)

const chatHelp = `type @ID text to send (@CC-2,CC-3 text for several, @* text for everyone);
text without @ goes to the last recipient. /peers, /sessions, /help, /quit.`

func chatCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "chat",
		Usage: "interactive test client: send with @ID text, see messages as they arrive",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "id", Usage: "the id to chat as (default: this shell's session id or hostname-pid)"},
			timeoutFlag(),
		},
		Action: func(c *ucli.Context) error {
			id := c.String("id")
			if id == "" {
				var err error
				if id, err = sessionID(c); err != nil {
					return err
				}
			}
			if err := protocol.ValidateID(id); err != nil {
				return exitf(ExitUsage, "--id: %v", err)
			}
			var outMu sync.Mutex
			say := func(format string, args ...any) {
				outMu.Lock()
				defer outMu.Unlock()
				fmt.Fprintf(s.Stdout, format+"\n", args...)
			}
			var cl *client
			onMsg := func(es []inbox.Entry) {
				for _, e := range es {
					say("[%s] %s → you (%s): %s", e.TS.Local().Format(time.TimeOnly), e.From, e.ID, e.Body)
				}
				if cl != nil {
					ids := make([]string, len(es))
					for i, e := range es {
						ids[i] = e.ID
					}
					cl.in.MarkRead(ids...)
				}
			}
			cl, err := dial(c, s, id, c.Duration("timeout"), onMsg)
			if err != nil {
				return err
			}
			defer cl.close()
			// Show what arrived while offline.
			if old := cl.in.List(inbox.Query{}); len(old) > 0 {
				onMsg(old)
			}
			say("chatting as %s on %s. %s", id, cl.cfg.url, chatHelp)
			last := ""
			lines := make(chan string)
			go func() {
				sc := bufio.NewScanner(s.Stdin)
				sc.Buffer(make([]byte, 64<<10), protocol.DefaultMaxBodyBytes)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			for {
				var line string
				var ok bool
				select {
				case line, ok = <-lines:
				case <-cl.l.StateChanged():
					if st := cl.l.Status(); st.StopReason != "" {
						return exitf(ExitStopped, "%s", st.StopReason)
					}
					continue
				case <-c.Context.Done():
					return nil
				}
				if !ok {
					return nil
				}
				line = strings.TrimSpace(line)
				ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
				switch {
				case line == "":
				case line == "/quit" || line == "/exit":
					cancel()
					return nil
				case line == "/help":
					say("%s", chatHelp)
				case line == "/peers":
					ps, err := cl.l.RequestPeers(ctx)
					if err != nil {
						say("! %v", err)
					}
					for _, p := range ps {
						me := ""
						if p.ID == id {
							me = " (you)"
						}
						say("  %s%s %s %s", p.ID, me, p.Agent, p.Cwd)
					}
				case line == "/sessions":
					ss, err := cl.l.Sessions(ctx)
					if err != nil {
						say("! %v", err)
					}
					for _, x := range ss {
						st := "offline"
						if x.Online {
							st = "online"
						}
						say("  %s %s last seen %s", x.ID, st, x.LastSeen.Local().Format(time.DateTime))
					}
				default:
					to, body := last, line
					if strings.HasPrefix(line, "@") {
						sp := strings.IndexAny(line, " \t")
						if sp < 0 {
							say("! nothing to send: @ID text")
							break
						}
						to, body = line[1:sp], strings.TrimSpace(line[sp:])
					}
					if to == "" {
						say("! who to? start with @ID (or @* for everyone)")
						break
					}
					rcpt, err := tools.ParseTo(to, id)
					if err != nil {
						say("! %v", err)
						break
					}
					last = to
					r := cl.l.Send(ctx, protocol.Send{To: rcpt, Body: body})
					switch {
					case r.Err != nil:
						say("! not sent: %v", r.Err)
					case r.Queued:
						say("  queued (%s)", r.Reason)
					default:
						var parts []string
						for _, o := range r.Accepted.Recipients {
							parts = append(parts, o.ID+"="+o.Status)
						}
						if len(parts) == 0 {
							parts = []string{"nobody online"}
						}
						say("  sent %s: %s", r.Accepted.ID, strings.Join(parts, " "))
					}
				}
				cancel()
			}
		},
	}
}
