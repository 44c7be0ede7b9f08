package tools

import (
	"context"
	"fmt"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ThreadArgs are relay_thread's parameters.
type ThreadArgs struct {
	Thread string `json:"thread" jsonschema:"the thread (conversation) name, as given to relay_send"`
	Limit  int    `json:"limit,omitempty" jsonschema:"most messages, the newest (default 50)"`
}

// ThreadOutput is relay_thread's structured content.
type ThreadOutput struct {
	Thread   string       `json:"thread"`
	Messages []MessageOut `json:"messages"`
	More     bool         `json:"more,omitempty"` // older messages exist
	Source   string       `json:"source"`         // relay, or inbox when the relay is offline
}

func (d *Deps) thread(ctx context.Context, _ *mcp.CallToolRequest, a ThreadArgs) (*mcp.CallToolResult, any, error) {
	if a.Thread == "" {
		return errResult("`thread` is empty: name the conversation (the thread given to relay_send; relay_receive shows thread=… on each message)."), nil, nil
	}
	if len(a.Thread) > protocol.MaxThreadBytes {
		return errResult(fmt.Sprintf("`thread` is longer than %d bytes.", protocol.MaxThreadBytes)), nil, nil
	}
	if why := d.orphaned(); why != "" {
		return errResult("Not read: " + why), nil, nil
	}
	if a.Limit <= 0 {
		a.Limit = 50
	}
	a.Limit = min(a.Limit, protocol.MaxHistoryLimit)
	out := ThreadOutput{Thread: a.Thread, Source: "relay", Messages: []MessageOut{}}
	var es []inbox.Entry
	note := ""
	h, err := d.Link.History(ctx, protocol.History{Thread: a.Thread, Limit: a.Limit})
	if err == nil {
		out.More = h.More
		for _, m := range h.Messages {
			es = append(es, inbox.Entry{Message: m})
		}
	} else {
		// Offline: what this session received in the thread (not its own sends).
		out.Source = "inbox"
		st := d.Link.Status()
		note = fmt.Sprintf("Relay %s (%s): showing only messages received in this thread, from the local inbox; your own sends are missing.\n", st.State, offlineHint(st))
		if st.State == link.StateConnected {
			note = "The relay did not answer (" + err.Error() + "): showing only messages received in this thread, from the local inbox.\n"
		}
		for _, e := range d.Inbox.List(inbox.Query{IncludeRead: true}) {
			if e.Thread == a.Thread {
				e.Read = false
				es = append(es, e)
			}
		}
		es = cut(es, a.Limit, true)
	}
	if len(es) == 0 {
		return textResult(note + "No messages in thread " + a.Thread + " that this session can see."), out, nil
	}
	text, msgs := render(es, false, d.shortener(es))
	out.Messages = msgs
	head := fmt.Sprintf("%sThread %s: %d message(s), oldest first.", note, a.Thread, len(es))
	if out.More {
		head += " Older ones exist: pass a larger limit."
	}
	return textResult(head + " " + dataNote + text), out, nil
}
