package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/tools"
	ucli "github.com/urfave/cli/v2"
)

// chatChoices: --id, else the session id, else cli-HOST, cli-HOST-PID.
func chatChoices(c *ucli.Context) ([]idChoice, error) {
	id := c.String("id")
	if id == "" && (os.Getenv(EnvSessionID) != "" || c.String("client-id") != "") {
		var err error
		if id, err = sessionID(c); err != nil {
			return nil, err
		}
	}
	if id != "" {
		if err := protocol.ValidateID(id); err != nil {
			return nil, exitf(ExitUsage, "--id: %v", err)
		}
		return []idChoice{{id: id, explicit: true}}, nil
	}
	host, _ := os.Hostname()
	return []idChoice{{id: CLIID(host)}, {id: "cli-" + DefaultID(host, os.Getpid())}}, nil
}

const chatHelp = `type @ID text to send (@CC-2,CC-3 text for several, @* text for everyone);
text without @ goes to the last recipient. /peers, /sessions, /help, /quit.`

func chatCommand(s Streams) *ucli.Command {
	return &ucli.Command{
		Name:  "chat",
		Usage: "interactive test client: send with @ID text, see messages as they arrive",
		Description: `Type @ID text to send (@CC-2,CC-3 text for several, @* text for everyone);
a line without @ goes to the last recipient. /peers, /sessions, /help, /quit.
Messages and peers joining or leaving are printed as they happen.

The id is --id, else this shell's session id (CLAUDE_RELAY_SESSION_ID,
--client-id, RELAY_CLIENT_ID), else cli-HOST. chat never takes an id over
from a live session unless --takeover is given.

Examples:
   relay-mcp chat --id ME
   printf '@CC-2 hello\n/quit\n' | relay-mcp chat --id ME

Exit codes: 0 on /quit or end of input, 3 relay unreachable, 5 replaced or
refused by the relay, 7 the id is online elsewhere.`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "id", DefaultText: "the session id, else cli-HOST", Usage: "the id to chat as"},
			takeoverFlag(),
			timeoutFlag(),
		},
		Action: func(c *ucli.Context) error {
			choices, err := chatChoices(c)
			if err != nil {
				return err
			}
			cfg, err := loadCLIConfig(c, s)
			if err != nil {
				return err
			}
			var outMu sync.Mutex
			printed := map[string]bool{}
			say := func(format string, args ...any) {
				outMu.Lock()
				defer outMu.Unlock()
				fmt.Fprintf(s.Stdout, format+"\n", args...)
			}
			// show prints each message once, whether it was in the inbox
			// before or arrived on the connection, and marks it read.
			show := func(in *inbox.Inbox, es []inbox.Entry) {
				var ids []string
				outMu.Lock()
				for _, e := range es {
					if printed[e.ID] {
						continue
					}
					printed[e.ID] = true
					ids = append(ids, e.ID)
					fmt.Fprintf(s.Stdout, "[%s] %s → you (%s): %s\n", e.TS.Local().Format(time.TimeOnly), e.From, e.ID, e.Body)
				}
				outMu.Unlock()
				in.MarkRead(ids...)
			}
			presence := func(p protocol.Presence) {
				if p.Event == protocol.PresenceStatus {
					say("* %s status: %s", p.Peer.ID, p.Peer.Status)
					return
				}
				say("* %s %s", p.Peer.ID, p.Event)
			}
			cl, err := dial(c, cfg, choices, dialOptions{timeout: c.Duration("timeout"), takeover: c.Bool("takeover"), outbox: true, onMsg: show, onPeer: presence})
			if err != nil {
				return err
			}
			defer cl.close()
			id := cl.id
			// Show what arrived while offline.
			show(cl.in, cl.in.List(inbox.Query{}))
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
						if w := tools.LoopNudge(r.Accepted.Warning); w != "" {
							say("  %s", w)
						}
					}
				}
				cancel()
			}
		},
	}
}
