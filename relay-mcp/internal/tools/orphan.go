package tools

import (
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
)

// orphaned says why this process must leave the inbox alone, or "". After
// a takeover (close 4409) the relay-mcp that replaced this one connects as
// the same id and stores its mail in the same inbox directory: reading or
// marking it here would hide that mail from the live session.
func (d *Deps) orphaned() string {
	st := d.Link.Status()
	if st.State != link.StateStopped || st.StopCode != protocol.CloseReplaced {
		return ""
	}
	id := d.Link.ClientID()
	return "this session was replaced: another relay-mcp took over the id " + id +
		", and the mail in the inbox the two share is that session's to read. This session stays offline; restart it with a different id to receive mail here."
}
