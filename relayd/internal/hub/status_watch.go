package hub

import (
	"context"
	"slices"
	"sync"

	"github.com/claude-relay/claude-relay/protocol"
)

// statusWatch is the hub's state for status lines and wake-ups: each
// connection's status line, and who watches whose mailbox.
//
// Lock order: Hub.mu before statusWatch.mu (peerInfo reads a status under
// Hub.mu); nothing takes Hub.mu while holding statusWatch.mu.
type statusWatch struct {
	mu       sync.Mutex
	status   map[*Conn]string
	claims   map[*Conn]func(id string) bool // what the connection's token may claim
	watching map[*Conn][]string
	watchers map[string][]*Conn // watched id → connections watching it
}

func (v *statusWatch) init() {
	v.status = map[*Conn]string{}
	v.claims = map[*Conn]func(string) bool{}
	v.watching = map[*Conn][]string{}
	v.watchers = map[string][]*Conn{}
}

func (v *statusWatch) statusOf(c *Conn) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.status[c]
}

func (v *statusWatch) setStatus(c *Conn, s string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s == "" {
		delete(v.status, c)
	} else {
		v.status[c] = s
	}
}

// forget drops everything kept for c once its connection ends.
func (v *statusWatch) forget(c *Conn) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.status, c)
	delete(v.claims, c)
	v.unwatchLocked(c)
}

func (v *statusWatch) unwatchLocked(c *Conn) {
	for _, id := range v.watching[c] {
		ws := slices.DeleteFunc(v.watchers[id], func(x *Conn) bool { return x == c })
		if len(ws) == 0 {
			delete(v.watchers, id)
		} else {
			v.watchers[id] = ws
		}
	}
	delete(v.watching, c)
}

// SetClaims tells the hub which ids the connection's credentials may claim:
// only those may be watched. Transports call it after Join, before the
// connection's first frame is handled; without it any id may be watched
// (a relay without per-identity tokens).
func (c *Conn) SetClaims(may func(id string) bool) {
	v := &c.hub.statusWatch
	v.mu.Lock()
	defer v.mu.Unlock()
	v.claims[c] = may
}

// handleStatusWatch answers the status and watch frames; ok is false for others.
func (c *Conn) handleStatusWatch(ctx context.Context, f protocol.Frame) (reply protocol.Frame, ok bool) {
	h := c.hub
	switch f := f.(type) {
	case *protocol.Status:
		h.statusWatch.setStatus(c, f.Status)
		h.log.Info("status", "client", c.id, "status", f.Status)
		h.mu.Lock()
		current := h.conns[c.id] == c
		others := h.othersLocked(c.id)
		h.mu.Unlock()
		if current {
			h.reclaim(ctx, c) // the other nodes of a cluster show the new status too
			p := &protocol.Presence{Event: protocol.PresenceStatus, Peer: c.peerInfo()}
			for _, o := range others {
				o.push(p)
			}
			h.emit(Event{Kind: EventStatus, Peer: &p.Peer})
		}
		return &protocol.Status{Ref: f.Ref, Status: f.Status}, true
	case *protocol.Watch:
		return h.watch(ctx, c, f), true
	}
	return nil, false
}

func (h *Hub) watch(ctx context.Context, c *Conn, f *protocol.Watch) protocol.Frame {
	v := &h.statusWatch
	v.mu.Lock()
	may := v.claims[c]
	for _, id := range f.IDs {
		if may != nil && !may(id) {
			v.mu.Unlock()
			return &protocol.ErrorFrame{Ref: f.Ref, Code: protocol.CodeForbidden,
				Message: "this connection's token may not claim " + id + ", so it may not watch its mail — connect with a token that lists " + id}
		}
	}
	v.unwatchLocked(c)
	ids := slices.Compact(slices.Sorted(slices.Values(f.IDs)))
	v.watching[c] = ids
	for _, id := range ids {
		v.watchers[id] = append(v.watchers[id], c)
	}
	v.mu.Unlock()
	h.log.Info("watching mail", "client", c.id, "ids", ids)
	// Mail that waits already wakes the watcher at once: it may have been
	// down when it came.
	for _, id := range ids {
		if m := h.mailEvent(ctx, id); m != nil && m.Count > 0 {
			c.push(m)
		}
	}
	return &protocol.Watch{Ref: f.Ref, IDs: ids}
}

// mailEvent describes id's mailbox, or nil when the store cannot say.
func (h *Hub) mailEvent(ctx context.Context, id string) *protocol.Mail {
	n, err := h.store.Unacked(ctx, id)
	if err != nil {
		h.log.Warn("could not count mail for a watcher", "client", id, "err", err)
		return nil
	}
	last, err := h.store.LastSeq(ctx, id)
	if err != nil {
		h.log.Warn("could not read mailbox for a watcher", "client", id, "err", err)
		return nil
	}
	return &protocol.Mail{For: id, Count: n, Seq: last, Online: h.isOnline(id)}
}

// notifyWatchers pushes a mail event to the watchers of each recipient
// that got a message.
func (h *Hub) notifyWatchers(ctx context.Context, recipients []string) {
	v := &h.statusWatch
	v.mu.Lock()
	if len(v.watchers) == 0 {
		v.mu.Unlock()
		return
	}
	type target struct {
		id string
		ws []*Conn
	}
	var ts []target
	for _, id := range recipients {
		if ws := v.watchers[id]; len(ws) > 0 {
			ts = append(ts, target{id, slices.Clone(ws)})
		}
	}
	v.mu.Unlock()
	for _, t := range ts {
		m := h.mailEvent(ctx, t.id)
		if m == nil {
			continue
		}
		for _, w := range t.ws {
			w.push(m)
		}
	}
}
