package cluster

import (
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// The stream's events: relay.mail.* carries a message, a store.Message in
// its JSON form (its tags are the stream's format); relay.ev.* an opEvent.

// opEvent is any relay.ev.* event. Op names it, so the node that published
// it can wait until its own index has applied it (read your writes).
type opEvent struct {
	Op      string             `json:"op"`
	Upto    uint64             `json:"upto,omitempty"`    // ack, read
	IDs     []string           `json:"ids,omitempty"`     // read
	At      time.Time          `json:"at,omitzero"`       // ack, read
	Unread  bool               `json:"unread,omitempty"`  // clear
	Session *store.SessionInfo `json:"session,omitempty"` // touch
}
