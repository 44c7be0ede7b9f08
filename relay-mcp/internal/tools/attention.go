package tools

import (
	"context"
	"fmt"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Attention: how the agent comes to notice its mail, and how the sender
// learns that it did. MCP notifications do not start a turn in today's
// clients, so they are sent (cheap, and some clients show them) but never
// relied on; hooks (package hook) are the dependable path in Claude Code.

// InboxURI is the resource holding this session's unread mail.
const InboxURI = "relay://inbox"

// refreshEvery is how often Watch re-reads the inbox for changes made by
// other processes (a hook marking mail read).
const refreshEvery = time.Second

// SetSubscriptions lets clients subscribe to InboxURI (and nothing else).
func SetSubscriptions(o *mcp.ServerOptions) {
	check := func(uri string) error {
		if uri != InboxURI {
			return fmt.Errorf("no resource %q to subscribe to; this server has %s", uri, InboxURI)
		}
		return nil
	}
	o.SubscribeHandler = func(_ context.Context, r *mcp.SubscribeRequest) error { return check(r.Params.URI) }
	o.UnsubscribeHandler = func(_ context.Context, r *mcp.UnsubscribeRequest) error { return check(r.Params.URI) }
}

// RegisterInbox adds the relay://inbox resource: reading it returns the
// unread mail without marking it read (a client may read it without the
// model seeing it).
func RegisterInbox(s *mcp.Server, d *Deps) {
	s.AddResource(&mcp.Resource{
		URI:         InboxURI,
		Name:        "relay-inbox",
		Title:       "Unread relay messages",
		Description: "Messages from other agent sessions not yet read, oldest first. Subscribe to be told when mail arrives. Reading it does not mark anything read; relay_receive does.",
		MIMEType:    "text/plain",
	}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		es := d.unread()
		text := "No unread messages."
		if len(es) > 0 {
			body, _ := render(es, false, d.shortener(nil))
			text = fmt.Sprintf("%d unread message(s), oldest first. %s%s", len(es), dataNote, body)
		}
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: InboxURI, MIMEType: "text/plain", Text: text}}}, nil
	})
}

// unread is the unread mail from peers, oldest first.
func (d *Deps) unread() []inbox.Entry {
	if d.orphaned() != "" {
		return nil // the live session's mail, not this one's
	}
	self := d.Link.ClientID()
	var out []inbox.Entry
	for _, e := range d.Inbox.List(inbox.Query{}) {
		if e.From != self {
			out = append(out, e)
		}
	}
	return out
}

// Watch runs until ctx ends. When new mail arrives it sends a logging
// notification (to clients that set a level) and resources/updated for
// InboxURI (to subscribers). And it reports reads to the relay: whatever
// the inbox says was shown to the model — by relay_receive in this
// process or by a hook in another — is sent in a read frame, once per
// connection (the relay keeps the first time; repeats change nothing).
func Watch(ctx context.Context, s *mcp.Server, d *Deps) {
	seen := map[string]bool{}
	old, _ := d.Inbox.Changes(0)
	for _, e := range old {
		seen[e.ID] = true // mail from before this process: no news
	}
	reported := map[string]bool{}
	var unreported []string // read, not yet reported on this connection
	queued := map[string]bool{}
	var since uint64 // what of the inbox was looked at (Inbox.Changes)
	conn := -1       // which connection reads were reported on: Status.Reconnects
	tick := time.NewTicker(refreshEvery)
	defer tick.Stop()
	for {
		stateCh, changed := d.Link.StateChanged(), d.Inbox.Changed()
		st := d.Link.Status()
		connected := st.State == link.StateConnected
		if connected && st.Reconnects != conn {
			conn = st.Reconnects
			clear(reported) // a new connection: report everything once
			unreported, since = unreported[:0], 0
			clear(queued)
		}
		// Only what changed since the last look: this runs at every
		// change, and an inbox holds up to inbox.DefaultLimit messages.
		changes, next := d.Inbox.Changes(since)
		since = next
		news := map[string]bool{}
		for _, e := range changes {
			if !seen[e.ID] {
				seen[e.ID] = true
				if !e.Read && e.From != d.Link.ClientID() {
					news[e.ID] = true
				}
			}
			if e.Read && !reported[e.ID] && !queued[e.ID] {
				queued[e.ID] = true
				unreported = append(unreported, e.ID)
			}
		}
		var fresh []inbox.Entry
		if len(news) > 0 {
			for _, e := range d.Inbox.List(inbox.Query{}) {
				if news[e.ID] {
					fresh = append(fresh, e)
				}
			}
		}
		if len(fresh) > 0 && d.orphaned() == "" {
			d.announce(ctx, s, fresh)
		}
		if connected && len(unreported) > 0 {
			if err := d.Link.SendRead(ctx, unreported); err == nil {
				for _, id := range unreported {
					reported[id] = true
				}
				unreported = unreported[:0]
				clear(queued)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-stateCh:
		case <-changed:
		case <-tick.C:
			d.Inbox.Refresh()
		}
	}
}

// announce tells MCP clients that mail arrived. The log line names the
// senders, never the text: a peer's words go to the model only through
// tools, resources and hooks that frame them as data.
func (d *Deps) announce(ctx context.Context, s *mcp.Server, fresh []inbox.Entry) {
	unread := len(d.unread())
	from := map[string]int{}
	var order []string
	for _, e := range fresh {
		if from[e.From] == 0 {
			order = append(order, e.From)
		}
		from[e.From]++
	}
	ids := make([]string, len(fresh))
	for i, e := range fresh {
		ids[i] = e.ID
	}
	msg := fmt.Sprintf("%d new relay message(s) from %v; %d unread in all — read them with relay_receive", len(fresh), order, unread)
	for ss := range s.Sessions() {
		ss.Log(ctx, &mcp.LoggingMessageParams{Level: "notice", Logger: "claude-relay",
			Data: map[string]any{"event": "mail", "message": msg, "from": order, "ids": ids, "unread": unread}})
	}
	s.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: InboxURI})
	if d.Channel != nil {
		self := d.Link.ClientID()
		for _, e := range fresh {
			d.Channel.Notify(ctx, ChannelMethod, ChannelEvent(self, e))
		}
	}
}
