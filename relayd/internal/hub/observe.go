package hub

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// What the operator's console (package console) sees of the hub: events as
// they happen, operator posts and pair holds.

// Event kinds.
const (
	EventJoined  = "joined"  // Peer came online
	EventLeft    = "left"    // Peer went offline
	EventStatus  = "status"  // Peer changed its status line
	EventMessage = "message" // Msg was stored for Outcomes
	EventStage   = "stage"   // Client acked or read mail: its receipts moved
	EventLoop    = "loop"    // Pair's exchange looks like a loop (Warning)
	EventHold    = "hold"    // Pair was held by the operator
	EventRelease = "release" // Pair was released
)

// Event is one thing the hub did, for observers.
type Event struct {
	Kind     string
	At       time.Time
	Peer     *protocol.Peer     // joined, left, status
	Reason   string             // left
	Msg      *store.Message     // message
	Outcomes []protocol.Outcome // message: what became of it per recipient
	Client   string             // stage: whose mailbox
	Pair     [2]string          // loop, hold, release: sorted
	By       string             // hold, release: the operator who did it
	Warning  string             // loop
}

// observers are the functions Observe registered. Each is called on the
// goroutine that made the event and must not block or call the hub.
type observers struct {
	mu   sync.RWMutex
	next int
	fns  []observer // a slice, not a map: every message walks it
}

type observer struct {
	id int
	fn func(Event)
}

// Observe calls fn for every event until stop is called. fn must be quick
// and must not block: it runs on the connection or store goroutine that
// made the event.
func (h *Hub) Observe(fn func(Event)) (stop func()) {
	o := &h.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	id := o.next
	o.next++
	o.fns = append(o.fns, observer{id, fn})
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.fns = slices.DeleteFunc(o.fns, func(x observer) bool { return x.id == id })
	}
}

// emit gives e to every observer.
func (h *Hub) emit(e Event) {
	o := &h.obs
	o.mu.RLock()
	defer o.mu.RUnlock()
	if len(o.fns) == 0 {
		return
	}
	if e.At.IsZero() {
		e.At = h.opts.Now().UTC()
	}
	for _, x := range o.fns {
		x.fn(e)
	}
}

// Store is the hub's store, for read-only views (the console).
func (h *Hub) Store() store.Store { return h.store }

// Post sends a message as an operator: a person at the console, whose id
// (protocol.PersonPrefix + name) no agent can claim. Recipients see it
// with message.person set. It goes the way any send goes: stored first,
// then pushed to the recipients online.
func (h *Hub) Post(ctx context.Context, from string, s *protocol.Send) (*protocol.Accepted, *protocol.Error) {
	if !protocol.IsPersonID(from) {
		return nil, &protocol.Error{Code: protocol.CodeBadID, Message: fmt.Sprintf("%q is not an operator id (%s…)", from, protocol.PersonPrefix)}
	}
	now := h.opts.Now()
	// Known, so that an agent's reply to the operator is kept for it.
	if err := h.store.Touch(ctx, store.SessionInfo{ID: from, Agent: "person", Host: "console", FirstSeen: now, LastSeen: now}); err != nil {
		h.log.Warn("could not record operator", "client", from, "err", err)
	}
	return h.sendWait(ctx, &Conn{hub: h, id: from}, s)
}

// ReadOnConsole marks every message in the mailboxes of these operator ids
// (protocol.PersonPrefix …) delivered and read: a person reads agents'
// replies on the console, which has no client to ack or report reading
// them, so without this they would count as unread for ever and fill the
// mailbox up to the queue limit. The console calls it when an operator's
// page loads the relay's state, which it does on every message. Other ids
// are left alone.
func (h *Hub) ReadOnConsole(ctx context.Context, ids []string) {
	now := h.opts.Now()
	for _, id := range ids {
		if !protocol.IsPersonID(id) {
			continue
		}
		last, err := h.store.LastSeq(ctx, id)
		if err != nil || last == 0 {
			continue
		}
		if err := h.store.Ack(ctx, id, last); err != nil {
			h.log.Warn("could not mark an operator's mail delivered", "client", id, "err", err)
			continue
		}
		if _, err := h.store.MarkRead(ctx, id, nil, last, now); err != nil {
			h.log.Warn("could not mark an operator's mail read", "client", id, "err", err)
		}
		h.emit(Event{Kind: EventStage, Client: id})
	}
}
