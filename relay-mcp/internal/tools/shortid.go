package tools

import (
	"fmt"
	"strings"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
)

// shortener returns the short form of each id (inbox.Shortener) among
// the ids in the inbox and in extra.
func (d *Deps) shortener(extra []inbox.Entry) func(string) string {
	if len(extra) == 0 && d.Inbox != nil {
		return d.Inbox.Shortener()
	}
	var ids []string
	if d.Inbox != nil {
		for _, e := range d.Inbox.Briefs() {
			ids = append(ids, e.ID)
		}
	}
	for _, e := range extra {
		ids = append(ids, e.ID)
	}
	return inbox.Shortener(ids)
}

// resolveID turns an id as the model passes it back — whole, or the short
// form results show — into the whole id, looking the short form up in
// this session's inbox.
func (d *Deps) resolveID(name, s string) (string, error) {
	s = strings.TrimSpace(s)
	var all []inbox.Brief
	if d.Inbox != nil {
		all = d.Inbox.Briefs()
	}
	for _, e := range all {
		if e.ID == s {
			return s, nil
		}
	}
	if l := strings.ToLower(s); len(l) >= 6 && len(l) < 36 && strings.Trim(l, "0123456789abcdef-") == "" {
		var found []string
		for _, e := range all {
			if strings.HasSuffix(e.ID, l) {
				found = append(found, e.ID)
			}
		}
		switch {
		case len(found) == 1:
			return found[0], nil
		case len(found) > 1:
			return "", fmt.Errorf("`%s` %s matches %d messages: give more of the id", name, s, len(found))
		}
	}
	if err := protocol.ValidateMessageID(s); err != nil {
		return "", fmt.Errorf("`%s` is not a message id: %s (give the id relay_receive shows, or the whole id relay_send names)", name, strings.TrimPrefix(err.Error(), string(protocol.CodeBadID)+": "))
	}
	return s, nil // not held here (a message this session sent): the relay knows it
}
