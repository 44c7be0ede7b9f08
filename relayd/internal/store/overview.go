package store

import (
	"context"
	"time"
)

// Overview is what a store shows the relay's operator: every conversation
// (the console), not only one client's view. Part of Store.
type Overview interface {
	// Timeline returns the newest q.Limit messages that match q, oldest
	// first, and whether older ones exist (page back with Before = the
	// first id).
	Timeline(ctx context.Context, q TimelineQuery) ([]Message, bool, error)
	// Stages returns every mailbox entry still held of the messages with
	// these ids, whoever sent them: stored, delivered (acked), read.
	Stages(ctx context.Context, ids []string) ([]Receipt, error)
	// OldestUnread returns, for each of clients with mail not yet read,
	// the time of its oldest such message.
	OldestUnread(ctx context.Context, clients []string) (map[string]time.Time, error)
}

// TimelineQuery selects the console's timeline.
type TimelineQuery struct {
	Peer   string // sent by or to this id, when set
	With   string // with Peer set: only between Peer and this id
	Thread string // only this thread, when set
	Before string // message id: only older messages
	Limit  int    // defaults to 100
}
