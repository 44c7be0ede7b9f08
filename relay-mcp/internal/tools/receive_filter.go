package tools

import (
	"slices"
	"strings"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
)

// matches applies relay_receive's thread and reply_to filters.
func matches(e inbox.Entry, a ReceiveArgs) bool {
	return (a.Thread == "" || a.Thread == "*" || e.Thread == a.Thread) && (a.ReplyTo == "" || e.ReplyTo == a.ReplyTo)
}

// byThread orders messages by thread, in the order each thread first
// appears, oldest first within a thread; messages without one come last.
func byThread(es []inbox.Entry) []inbox.Entry {
	rank := map[string]int{}
	for _, e := range es {
		if _, ok := rank[e.Thread]; !ok && e.Thread != "" {
			rank[e.Thread] = len(rank)
		}
	}
	rank[""] = len(rank)
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b inbox.Entry) int { return rank[a.Thread] - rank[b.Thread] })
	return out
}

// cut keeps count entries: the oldest unread, or the newest with read ones.
func cut(es []inbox.Entry, count int, includeRead bool) []inbox.Entry {
	if count <= 0 || len(es) <= count {
		return es
	}
	if includeRead {
		return es[len(es)-count:]
	}
	return es[:count]
}

func filterText(a ReceiveArgs) string {
	var parts []string
	for _, kv := range [][2]string{{"from", a.From}, {"thread", a.Thread}, {"reply_to", a.ReplyTo}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " matching " + strings.Join(parts, " ")
}
