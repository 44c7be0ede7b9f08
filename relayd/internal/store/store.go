// Package store holds what relayd must remember: the sessions it has seen,
// one mailbox per recipient with a strictly increasing seq, acks and
// retention. The hub calls it through the Store interface; Memory keeps
// everything in process memory, the SQLite store (package-level Open) keeps
// it on disk, the journal store (OpenJournal) keeps it in memory made
// durable by an append-only file.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

// ErrUnavailable is returned (wrapped) when the store cannot take writes
// (disk full, read-only file, database gone). Relays answer the sender with
// protocol.CodeStoreUnavailable and keep delivering what is already stored.
var ErrUnavailable = errors.New("message store unavailable")

// Message is a message as stored: one row, shared by all its recipients.
// Its JSON form is the one the cluster's stream holds (relay.mail.*) and
// the console shows.
type Message struct {
	ID      string    `json:"id"`
	From    string    `json:"from"`
	To      []string  `json:"to"` // as the sender wrote it; ["*"] for a broadcast
	Body    string    `json:"body"`
	TS      time.Time `json:"ts"`
	ReplyTo string    `json:"reply_to,omitempty"`
	Thread  string    `json:"thread,omitempty"`
}

// Delivery is one message in one recipient's mailbox.
type Delivery struct {
	Seq uint64
	Msg Message
	// Provisional: submitted, not committed yet when it was read.
	Provisional bool
}

// Slot is what Append did for one recipient.
type Slot struct {
	Seq  uint64 // the seq assigned in the recipient's mailbox; 0 when Full
	Full bool   // the mailbox held MaxQueue unacked messages; nothing stored
}

// slotsOf is what a send's recorded seqs say: 0 for a mailbox that was
// full.
func slotsOf(seqs []uint64) []Slot {
	var slots []Slot
	for _, seq := range seqs {
		slots = append(slots, Slot{Seq: seq, Full: seq == 0})
	}
	return slots
}

// SessionInfo is what the relay knows of a client id.
type SessionInfo struct {
	ID        string
	Host      string
	PID       int
	Cwd       string
	Agent     string
	Label     string
	FirstSeen time.Time
	LastSeen  time.Time
}

// HistoryQuery selects a page of the messages a client may see: those in its
// mailbox and those it sent (and has not cleared).
type HistoryQuery struct {
	Client string
	With   string // only the conversation with this peer, when set
	Thread string // only messages of this thread, when set
	Before string // message id: only older messages
	After  string // message id: only newer messages
	Limit  int
}

// Store is the relay's memory. Every method is safe for concurrent use.
type Store interface {
	// Touch records that a client connected (or is still connected) with
	// this metadata. A touched id is "known" at once: mail to it is queued
	// while it is offline. Touch need not wait for the record to be
	// durable (a hello must not wait for the disk); Sessions lists every
	// touch made before it was called.
	Touch(ctx context.Context, s SessionInfo) error
	// Known reports whether the id has ever been touched or has mail.
	Known(ctx context.Context, id string) (bool, error)
	// Sessions lists every known id with the count of unacked messages.
	Sessions(ctx context.Context) ([]SessionInfo, map[string]int, error)

	// Submit stores msg once and puts it in the mailbox of each recipient.
	// It assigns the recipients' seqs at once, in call order, and returns
	// one Slot per recipient (Full: the mailbox held maxQueue unacked
	// messages, when maxQueue > 0); a msg that finds every recipient's
	// mailbox full is not stored at all, and done runs on the caller's
	// goroutine (allFull). The commit runs in the background:
	// done runs exactly once, on a goroutine of the store and in the order
	// of the Submit calls, when the message is durable (for the stores
	// that promise it) or has failed. It must be quick and must not call
	// the store, unless it runs on the caller's goroutine (OnCaller).
	//
	// Early reports that the deliveries were visible to provisional
	// readers (Pending with provisional) before the commit: they may have
	// been written to a recipient before done, and if done then reports
	// an error or a duplicate they were never committed.
	//
	// With ref set, a send whose (msg.From, ref.Ref, ref.Digest) the store
	// already holds, among that sender's most recent protocol.RefWindow
	// refs, is not stored again: done gets the record of the first as Dup.
	// A retry of a send still in flight gets no slots and is visible to
	// no reader: done gets the first one's record once it commits, or an
	// error if it failed.
	Submit(msg Message, recipients []string, maxQueue int, ref *SendRef, done func(Submitted)) (slots []Slot, early bool)
	// Pending returns up to limit messages of id's mailbox with seq > after
	// and above its ack, oldest first. Without provisional only committed
	// messages; with it also those submitted and not committed yet, marked
	// Provisional (they stop at the first one that is not visible early).
	Pending(ctx context.Context, id string, after uint64, limit int, provisional bool) ([]Delivery, error)
	// Ack marks every message of id's mailbox up to seq upto as held by the
	// client.
	Ack(ctx context.Context, id string, upto uint64) error
	// LastSeq is the highest seq committed in id's mailbox (0 if none).
	LastSeq(ctx context.Context, id string) (uint64, error)
	// Unacked counts id's messages above its ack.
	Unacked(ctx context.Context, id string) (int, error)

	// History returns a page of what q.Client may see, oldest first, in the
	// order the relay stored the messages (which is the order of their ids
	// but for messages that concurrent senders got stored in the same
	// instant).
	//
	// Without After, or with both cursors, it is the newest Limit messages
	// older than Before (when set) and newer than After (when set), and
	// more reports that older ones exist beyond the page: page back by
	// passing the first id as Before. With After alone it pages forward:
	// the oldest Limit messages newer than After, and more reports that
	// newer ones exist: pass the last id as After. Limit defaults to 50.
	// A cursor need not be a stored message: an id that is gone (pruned,
	// cleared) still bounds the page by id.
	History(ctx context.Context, q HistoryQuery) ([]Message, bool, error)
	// Clear forgets id's read history (acked mail and its own sends); with
	// includeUnread its unacked mail too. It returns how many were forgotten.
	Clear(ctx context.Context, id string, includeUnread bool) (int, error)
	// Prune drops messages older than before from every mailbox and
	// returns how many mailbox entries were dropped.
	Prune(ctx context.Context, before time.Time) (int, error)

	// MarkRead records that client's model was shown these messages of
	// its mailbox (by message id), and those up to seq upto when upto > 0,
	// at time at. Entries already read keep their first time; ids not in
	// the mailbox are ignored. It returns how many entries became read.
	MarkRead(ctx context.Context, client string, ids []string, upto uint64, at time.Time) (int, error)
	// Receipts returns what became of the messages with these ids that
	// sender sent: one receipt per mailbox still holding one.
	Receipts(ctx context.Context, sender string, ids []string) ([]Receipt, error)
	// ReadStates returns, for each of the client ids that has a mailbox,
	// its unread count and when it last reported reading.
	ReadStates(ctx context.Context, clients []string) (map[string]ReadState, error)

	// The operator's views: every conversation, and a search of every
	// body (the console).
	Overview
	Searcher
	// The operator's holds of looping pairs, kept across restarts.
	Holder
	// UsedBytes is how much disk the store's data takes (0 for a store
	// that keeps nothing on disk): the relay refuses sends past its
	// --max-store-mb.
	UsedBytes(ctx context.Context) (int64, error)

	Close() error
}

// SendRef identifies a send for recognising its retries: the sender (the
// message's From), the ref it chose, and a digest of the content. A retry is
// the same ref with the same digest.
type SendRef struct {
	Ref    string
	Digest [32]byte
}

// Sent is what a store remembers of a send it took: enough to answer a
// retry with what the first attempt was told.
type Sent struct {
	ID         string
	TS         time.Time
	Recipients []string // the mailboxes it was offered to, in order
	Slots      []Slot   // what became of it in each
}

// Submitted is what became of a Submit, told to its done.
type Submitted struct {
	Slots []Slot // as Submit returned them (void with Dup or Err)
	Dup   *Sent  // the send was a retry of this one: nothing stored
	Err   error  // nothing stored
	Early bool   // as Submit returned it
	// OnCaller: done runs on the goroutine that called Submit, before
	// Submit returns (the memory store; the journal store when that
	// goroutine wrote the send itself). The caller may then do slow work
	// there, such as writing to the sender's socket, that it must not do
	// on a store's committer.
	OnCaller bool
}

// AppendWait submits msg and waits for its commit: for tools and tests.
func AppendWait(ctx context.Context, st Store, msg Message, recipients []string, maxQueue int) ([]Slot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // a dead context never gets its message stored
	}
	ch := make(chan Submitted, 1)
	st.Submit(msg, recipients, maxQueue, nil, func(r Submitted) { ch <- r })
	select {
	case r := <-ch:
		return r.Slots, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ToProtocol converts a delivery to the frame a recipient receives.
func (d Delivery) ToProtocol() *protocol.Message {
	m := d.Msg.ToProtocol()
	m.Seq = d.Seq
	m.Provisional = d.Provisional
	return m
}

// ToProtocol converts a stored message to a protocol message without seq.
func (m Message) ToProtocol() *protocol.Message {
	return &protocol.Message{ID: m.ID, From: m.From, To: m.To, Body: m.Body, TS: m.TS, ReplyTo: m.ReplyTo, Thread: m.Thread,
		Person: protocol.IsPersonID(m.From)}
}

// allFull reports whether a send found every one of its recipients'
// mailboxes full. No store keeps such a message: it reached no one, its
// sender was told so ("full" for each), and a sender that goes on sending
// into full mailboxes must not fill the store (the journal's memory) with
// what nobody will read. The store keeps no ref for it either: a retry
// that reaches it is a new attempt (the hub answers the retries it
// remembers with the first answer).
func allFull(slots []Slot) bool {
	if len(slots) == 0 {
		return false
	}
	for _, sl := range slots {
		if !sl.Full {
			return false
		}
	}
	return true
}
