package cluster

import (
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// mailEvent is a message as the stream holds it (relay.mail.*).
type mailEvent struct {
	ID      string    `json:"id"`
	From    string    `json:"from"`
	To      []string  `json:"to"`
	Body    string    `json:"body"`
	TS      time.Time `json:"ts"`
	ReplyTo string    `json:"reply_to,omitempty"`
	Thread  string    `json:"thread,omitempty"`
}

func toEvent(m store.Message) mailEvent {
	return mailEvent{ID: m.ID, From: m.From, To: m.To, Body: m.Body, TS: m.TS, ReplyTo: m.ReplyTo, Thread: m.Thread}
}

func (e mailEvent) message() store.Message {
	return store.Message{ID: e.ID, From: e.From, To: e.To, Body: e.Body, TS: e.TS, ReplyTo: e.ReplyTo, Thread: e.Thread}
}

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
