// Package hub knows who is online and routes messages between them. It owns
// no sockets: a transport (the v1 WebSocket handler, the older protocol's
// adapter) joins a client with Join, feeds it the frames it reads and writes
// what Conn.Next hands it. A recipient's connection pulls its mailbox from
// the store in seq order, so live delivery, resume after a reconnect and a
// slow consumer's backlog are one code path and nothing that was accepted
// can be skipped; the store hands a message to provisional readers while it
// commits it (send.go).
package hub

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// Options configure a Hub. The zero value of each field is a sane default.
type Options struct {
	// Store keeps mailboxes and sessions. Defaults to a memory store.
	Store store.Store
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Server is the version string sent in welcome. Defaults to "relayd".
	Server string
	// MaxQueue is the most unacked messages one mailbox may hold; a send to
	// a full mailbox is answered "full". Defaults to 10 000.
	MaxQueue int
	// ControlQueue is the most non-message frames (replies, presence) that
	// may wait for one connection's writer; past it the connection is too
	// slow and is closed with CloseSlowConsumer. Defaults to 1024.
	ControlQueue int
	// QueueBytes bounds the bytes waiting for one connection's writer:
	// its queued replies (history pages are the large ones) and each batch
	// of mailbox messages handed to it. Replies past it close the
	// connection with CloseSlowConsumer (its mail stays in its mailbox);
	// a mailbox batch stops at it. Defaults to 8 MiB.
	QueueBytes int
	// PullBatch is the most mailbox messages handed to a writer at once.
	// Defaults to 256.
	PullBatch int
	// StoreFull, when set, says why the store may take no more messages
	// (its size limit), or "": a send that would store anything is then
	// refused with CodeStoreFull.
	StoreFull func() string
	// HeartbeatMS is announced in welcome. Defaults to 0 (not announced).
	HeartbeatMS int64
	// Now defaults to time.Now.
	Now func() time.Time
	// Limits bound request and message rates; the zero value is unlimited.
	Limits Limits
	// Remote, when set, is the rest of a cluster of relayd nodes
	// (remote.go); nil for a relay on its own.
	Remote Remote
}

// Hub routes messages between connected clients.
type Hub struct {
	opts  Options
	log   *slog.Logger
	store store.Store
	ids   idGen

	lastRelease atomic.Int64 // unix nanos of the last releaseMemory (conn.go)

	notices noticeBoard // standing notices by client id (notices.go)

	mu     sync.Mutex
	conns  map[string]*Conn // online clients by id
	closed bool

	refsMu sync.Mutex
	refs   map[string]*refWindow // recent sends per client id, for retries

	lim *limiter

	statusWatch statusWatch // status lines and mail watchers (status_watch.go)

	reads inFlight // read reports being written (receipts.go)

	obs        observers                // the console's event feed (observe.go)
	holdMu     sync.Mutex               // guards holds
	holds      map[[2]string]store.Hold // pairs the operator held (holds.go)
	mailMu     sync.Mutex
	mailQ      [][]string // recipients whose watchers are to be told, in commit order
	mailActive bool       // a goroutine works through mailQ

	stats Stats
}

// Stats are the hub's counters since start.
type Stats struct {
	Sent        atomic.Int64 // send frames accepted
	Delivered   atomic.Int64 // recipients online when a message was stored
	Queued      atomic.Int64 // recipients offline, message kept for them
	Unknown     atomic.Int64 // recipients refused as unknown
	Full        atomic.Int64 // recipients refused because their mailbox was full
	StoreErrors atomic.Int64 // sends refused because the store failed
	// StoreFailing is set by a store write that failed and cleared by the
	// next that succeeds: /healthz reports degraded meanwhile.
	StoreFailing   atomic.Bool
	SlowConsumers  atomic.Int64 // connections closed for not draining their queue
	Replaced       atomic.Int64 // connections taken over by a newer one
	FramesToClient atomic.Int64 // frames handed to writers
	FramesInline   atomic.Int64 // of those, written by the sender's reader (Conn.wakeHere)
	RateLimited    atomic.Int64 // requests and sends refused with rate_limited
	LoopWarnings   atomic.Int64 // sends accepted with a loop warning
}

// New returns a hub ready for Join.
func New(opts Options) *Hub {
	if opts.Store == nil {
		opts.Store = store.NewMemory()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Server == "" {
		opts.Server = "relayd"
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = 10000
	}
	if opts.ControlQueue <= 0 {
		opts.ControlQueue = 1024
	}
	if opts.PullBatch <= 0 {
		opts.PullBatch = 256
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = 8 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Hub{opts: opts, log: opts.Logger, store: opts.Store, conns: map[string]*Conn{}, refs: map[string]*refWindow{},
		lim: newLimiter(opts.Limits)}
	h.statusWatch.init()
	return h
}

// Stats returns the hub's counters.
func (h *Hub) Stats() *Stats { return &h.stats }

func (h *Hub) isOnline(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.conns[id]
	return ok
}

// Online returns how many clients are connected.
func (h *Hub) Online() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// ErrClosed is returned by Join once the hub is shutting down.
var ErrClosed = errors.New("relay is shutting down")

// ErrIDInUse is returned by Join for a hello with no_takeover whose id is
// online.
var ErrIDInUse = errors.New("this client id is online on another connection; connect without no_takeover to take it over")

// Join registers a client that said hello. If the id is online already, the
// older connection is closed with CloseReplaced and the welcome names it.
// legacy marks a client of the older Node relay protocol.
func (h *Hub) Join(ctx context.Context, hello *protocol.Hello, legacy bool) (*Conn, *protocol.Welcome, error) {
	now := h.opts.Now()
	c := &Conn{
		hub:    h,
		id:     hello.ClientID,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		quiet:  hello.Quiet,
		sent:   hello.ResumeAfter,
		told:   hello.ResumeAfter,

		provisional: hello.Provisional && !legacy,
		early:       hello.Provisional || legacy,
		peer: protocol.Peer{
			ID: hello.ClientID, Host: hello.Host, PID: hello.PID, Cwd: hello.Cwd, Agent: hello.Agent,
			Label: hello.Label, ConnectedSince: now, Legacy: legacy,
		},
	}
	c.lastSeen.Store(now.UnixNano())
	c.lastFrame.Store(now.UnixNano())
	if hello.NoTakeover && (h.isOnline(c.id) || h.remoteOnline(c.id)) {
		// Checked again under the lock below; this early look keeps a
		// refused hello from touching the session or its resume point.
		return nil, nil, ErrIDInUse
	}
	if err := h.store.Touch(ctx, c.sessionInfo(now)); err != nil {
		h.log.Warn("could not record session", "client", c.id, "err", err)
	}
	if hello.ResumeAfter > 0 {
		last, err := h.store.LastSeq(ctx, c.id)
		switch {
		case err != nil:
			h.log.Warn("could not read mailbox", "client", c.id, "err", err)
		case hello.ResumeAfter > last:
			// The client holds seqs this mailbox never issued: the relay's
			// store was reset (memory store restarted, data dir replaced).
			// Resuming from there would skip every new message.
			h.log.Warn("client resumes beyond its mailbox; sending everything held", "client", c.id, "resume_after", hello.ResumeAfter, "last_seq", last)
			c.sent, c.told = 0, 0
		default:
			// The client holds everything up to resume_after: that is an ack.
			if err := h.store.Ack(ctx, c.id, hello.ResumeAfter); err != nil {
				h.log.Warn("could not record resume point", "client", c.id, "err", err)
			}
		}
	}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, nil, ErrClosed
	}
	old := h.conns[c.id]
	if old != nil && hello.NoTakeover {
		h.mu.Unlock()
		return nil, nil, ErrIDInUse
	}
	h.statusWatch.setStatus(c, hello.Status) // only now: a refused hello keeps no status
	h.conns[c.id] = c
	var peers []protocol.Peer
	if !c.quiet {
		peers = h.peersLocked()
	}
	others := h.othersLocked(c.id)
	h.mu.Unlock()
	elsewhere := h.claim(ctx, c) // the node that held the id closes it

	w := &protocol.Welcome{Server: h.opts.Server, Proto: protocol.Version, ClientID: c.id, Peers: peers, HeartbeatMS: h.opts.HeartbeatMS}
	if n, err := h.store.Unacked(ctx, c.id); err == nil {
		w.Backlog = n
	}
	if last, err := h.store.LastSeq(ctx, c.id); err == nil {
		w.LastSeq = last
	}
	if old != nil {
		h.stats.Replaced.Add(1)
		w.Replaced = &protocol.Replaced{Host: old.peer.Host, PID: old.peer.PID}
		reason := fmt.Sprintf("replaced by a newer connection for %s from host %q pid %d", c.id, hello.Host, hello.PID)
		old.kick(protocol.CloseReplaced, reason)
		h.log.Info("client replaced", "client", c.id, "old_host", old.peer.Host, "old_pid", old.peer.PID, "new_host", hello.Host, "new_pid", hello.PID)
	} else if elsewhere != nil {
		w.Replaced = &protocol.Replaced{Host: elsewhere.Host, PID: elsewhere.PID}
	}
	h.log.Info("client joined", "client", c.id, "host", hello.Host, "agent", hello.Agent, "legacy", legacy, "resume_after", hello.ResumeAfter)
	if !c.quiet { // a script's one-shot connection is no news to the others
		presence := &protocol.Presence{Event: protocol.PresenceJoined, Peer: c.peerInfo()}
		for _, o := range others {
			o.push(presence)
		}
		h.emit(Event{Kind: EventJoined, Peer: &presence.Peer})
	}
	h.pushNotices(c)
	c.wake() // mail may be waiting
	return c, w, nil
}

// Leave unregisters c when its connection ends. It removes the hub's entry
// only if it still points to c, so a replaced connection's teardown never
// removes the newer one.
func (h *Hub) Leave(c *Conn, reason string) {
	c.kick(protocol.CloseNormal, reason)
	c.flushAcks()
	if code, _ := c.CloseStatus(); code == protocol.CloseSlowConsumer {
		h.releaseMemory()
	}
	h.statusWatch.forget(c)
	h.mu.Lock()
	current := h.conns[c.id] == c
	if current {
		delete(h.conns, c.id)
	}
	others := h.othersLocked(c.id)
	h.mu.Unlock()
	if !current {
		return
	}
	if h.opts.Remote != nil {
		h.opts.Remote.Release(c.id)
	}
	now := h.opts.Now()
	if err := h.store.Touch(context.Background(), c.sessionInfo(now)); err != nil {
		h.log.Warn("could not record session", "client", c.id, "err", err)
	}
	h.log.Info("client left", "client", c.id, "reason", reason)
	if c.quiet || h.remoteOnline(c.id) { // moved to another node: not gone
		return
	}
	presence := &protocol.Presence{Event: protocol.PresenceLeft, Peer: c.peerInfo(), Reason: reason}
	for _, o := range others {
		o.push(presence)
	}
	h.emit(Event{Kind: EventLeft, Peer: &presence.Peer, Reason: reason})
}

// Close kicks every client with code (CloseGoingAway on shutdown) and
// refuses new joins. Transports see their Conn's Done close.
func (h *Hub) Close(code int, reason string) {
	h.mu.Lock()
	h.closed = true
	all := make([]*Conn, 0, len(h.conns))
	for _, c := range h.conns {
		all = append(all, c)
	}
	h.mu.Unlock()
	for _, c := range all {
		c.kick(code, reason)
	}
}

func (h *Hub) peersLocked() []protocol.Peer {
	out := make([]protocol.Peer, 0, len(h.conns))
	for _, c := range h.conns {
		out = append(out, c.peerInfo())
	}
	out = append(out, h.remotePeersLocked()...)
	slices.SortFunc(out, func(a, b protocol.Peer) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// othersLocked returns the connections, but self's, that want presence.
func (h *Hub) othersLocked(self string) []*Conn {
	var out []*Conn
	for id, c := range h.conns {
		if id != self && !c.quiet {
			out = append(out, c)
		}
	}
	return out
}

// Peers lists the clients online now, sorted by id.
func (h *Hub) Peers() []protocol.Peer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peersLocked()
}

// Sessions lists every id the relay knows, online or not.
func (h *Hub) Sessions(ctx context.Context) ([]protocol.Session, error) {
	infos, queued, err := h.store.Sessions(ctx)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	online := make(map[string]protocol.Peer, len(h.conns))
	for _, p := range h.remotePeersLocked() {
		online[p.ID] = p
	}
	for id, c := range h.conns {
		online[id] = c.peerInfo()
	}
	h.mu.Unlock()
	out := make([]protocol.Session, 0, len(infos))
	for _, s := range infos {
		ps := protocol.Session{ID: s.ID, Host: s.Host, PID: s.PID, Cwd: s.Cwd, Agent: s.Agent, Label: s.Label,
			FirstSeen: s.FirstSeen, LastSeen: s.LastSeen, Queued: queued[s.ID]}
		if p, ok := online[s.ID]; ok {
			ps.Online = true
			ps.Host, ps.PID, ps.Cwd, ps.Agent, ps.Label, ps.LastSeen = p.Host, p.PID, p.Cwd, p.Agent, p.Label, p.LastSeen
		}
		out = append(out, ps)
	}
	return out, nil
}

// sendDigest identifies a send's content, so that only a true retry (same
// ref, same content) is taken for one: a client that reuses refs for
// different messages loses none of them.
//
// The digest is SHA-256 of body, reply_to, thread and each recipient, each
// followed by a NUL byte. The SQLite store keeps it on disk: it must not
// change. The parts are hashed from one buffer, on the stack for the usual
// short message.
func sendDigest(s *protocol.Send) [32]byte {
	var stack [512]byte
	buf := stack[:0]
	for _, part := range [...]string{s.Body, s.ReplyTo, s.Thread} {
		buf = append(append(buf, part...), 0)
	}
	for _, part := range s.To {
		buf = append(append(buf, part...), 0)
	}
	return sha256.Sum256(buf)
}

// routing is a send on its way to the store: the message and who gets it.
type routing struct {
	msg      store.Message
	targets  []string           // mailboxes it goes to
	outcomes []protocol.Outcome // one per recipient; Status set for the unknown ones
	warning  string             // the exchange looks like a loop (accepted.warning)
}

// plan picks a send's recipients and gives it its id; nothing is stored.
func (h *Hub) plan(ctx context.Context, from *Conn, s *protocol.Send) (*routing, *protocol.Error) {
	now := h.opts.Now().UTC()
	var targets []string
	outcomes := make([]protocol.Outcome, 0, len(s.To))
	h.mu.Lock()
	if s.To.IsBroadcast() {
		for id := range h.conns {
			if id != from.id {
				targets = append(targets, id)
			}
		}
		for _, p := range h.remotePeersLocked() {
			if p.ID != from.id {
				targets = append(targets, p.ID)
			}
		}
		h.mu.Unlock()
		slices.Sort(targets)
		for _, id := range targets {
			outcomes = append(outcomes, protocol.Outcome{ID: id})
		}
	} else {
		var offline []int
		seen := newIDSet(len(s.To))
		for _, id := range s.To {
			if seen.has(outcomes, id) { // a repeated id: once is enough
				continue
			}
			seen.add(id)
			outcomes = append(outcomes, protocol.Outcome{ID: id})
			if _, ok := h.conns[id]; !ok && !h.remoteOnline(id) {
				offline = append(offline, len(outcomes)-1)
			}
		}
		h.mu.Unlock()
		var fresh []string // never seen, kept for anyway: new mailboxes
		for _, i := range offline {
			known, err := h.store.Known(ctx, outcomes[i].ID)
			if err != nil {
				h.stats.StoreErrors.Add(1)
				return nil, &protocol.Error{Code: protocol.CodeStoreUnavailable, Message: "the relay cannot read its store right now: " + err.Error(), Ref: s.Ref}
			}
			if !known && !s.QueueIfUnknown {
				outcomes[i].Status = protocol.StatusUnknown
			} else if !known {
				fresh = append(fresh, outcomes[i].ID)
			}
		}
		if perr := h.allowNewIDs(from.id, fresh, s.Ref); perr != nil {
			return nil, perr
		}
		for _, o := range outcomes {
			if o.Status == "" {
				targets = append(targets, o.ID)
			}
		}
	}

	if perr := h.held(from.id, targets, s.Ref); perr != nil {
		return nil, perr
	}
	if len(targets) > 0 && h.opts.StoreFull != nil {
		if why := h.opts.StoreFull(); why != "" {
			return nil, &protocol.Error{Code: protocol.CodeStoreFull, Ref: s.Ref, Message: why}
		}
	}
	if perr := h.allowSend(from.id, targets, s.Ref); perr != nil {
		return nil, perr
	}
	msg := store.Message{ID: h.ids.next(now), From: from.id, To: []string(s.To), Body: s.Body, TS: now, ReplyTo: s.ReplyTo, Thread: s.Thread}
	warning := h.lim.loops.note(from.id, targets, s.ReplyTo, s.Thread, now)
	if warning != "" {
		h.stats.LoopWarnings.Add(1)
		h.log.Info("exchange looks like a loop; warning the sender", "from", from.id, "warning", warning)
		if len(targets) > 0 {
			h.emit(Event{Kind: EventLoop, Pair: store.SortPair(from.id, targets[0]), Warning: warning})
		}
	}
	return &routing{msg: msg, targets: targets, outcomes: outcomes, warning: warning}, nil
}

func (h *Hub) storeFailed(from *Conn, ref string, err error) *protocol.Error {
	h.stats.StoreErrors.Add(1)
	h.stats.StoreFailing.Store(true)
	h.log.Error("store append failed", "from", from.id, "err", err)
	return &protocol.Error{Code: protocol.CodeStoreUnavailable, Message: "the relay could not store the message, nothing was sent; retry later (" + err.Error() + ")", Ref: ref}
}

// finish tells the sender what became of a stored message, targets[i]
// having got slots[i], and wakes the recipients online: here, the
// sender's reader writes it to those whose writers are idle itself (see
// Conn.wakeHere).
func (h *Hub) finish(ref string, r *routing, targets []string, slots []store.Slot, here bool) *protocol.Accepted {
	outcomes := slices.Clone(r.outcomes)
	slotOf := slotLookup(targets, slots)
	h.stats.Sent.Add(1)
	if len(targets) > 0 {
		h.stats.StoreFailing.Store(false) // a write succeeded
	}
	h.mu.Lock()
	var wake []*Conn
	for i := range outcomes {
		o := &outcomes[i]
		if o.Status != "" {
			h.stats.Unknown.Add(1)
			continue
		}
		switch c := h.conns[o.ID]; {
		case slotOf(o.ID).Full:
			o.Status = protocol.StatusFull
			h.stats.Full.Add(1)
		case c != nil:
			o.Status = protocol.StatusDelivered
			h.stats.Delivered.Add(1)
			wake = append(wake, c)
		case h.remoteOnline(o.ID):
			o.Status = protocol.StatusDelivered // its node reads it from the stream
			h.stats.Delivered.Add(1)
		default:
			o.Status = protocol.StatusQueued
			h.stats.Queued.Add(1)
		}
	}
	h.mu.Unlock()
	for _, c := range wake {
		if here {
			c.wakeHere()
		} else {
			c.wake()
		}
	}
	h.emit(Event{Kind: EventMessage, Msg: &r.msg, Outcomes: outcomes})
	return &protocol.Accepted{Ref: ref, ID: r.msg.ID, TS: r.msg.TS, Recipients: outcomes, Warning: r.warning}
}

// refWindow remembers the accepted answers to a client's last RefWindow
// sends, so a send retried after a dropped connection is answered, not
// delivered twice.
type refWindow struct {
	order []string // ring of refs, oldest at next
	next  int
	seen  map[string]sentRef
}

type sentRef struct {
	digest [32]byte
	acc    *protocol.Accepted
}

func (h *Hub) seenRef(client, ref string, digest [32]byte) *protocol.Accepted {
	h.refsMu.Lock()
	defer h.refsMu.Unlock()
	if w := h.refs[client]; w != nil {
		if s, ok := w.seen[ref]; ok && s.digest == digest {
			return s.acc
		}
	}
	return nil
}

func (h *Hub) rememberRef(client, ref string, digest [32]byte, acc *protocol.Accepted) {
	h.refsMu.Lock()
	defer h.refsMu.Unlock()
	w := h.refs[client]
	if w == nil {
		w = &refWindow{seen: map[string]sentRef{}}
		h.refs[client] = w
	}
	n := len(w.seen)
	w.seen[ref] = sentRef{digest, acc}
	if len(w.seen) == n {
		return // a reused ref: newest content wins, in its place in the ring
	}
	if len(w.order) < protocol.RefWindow {
		w.order = append(w.order, ref)
		return
	}
	delete(w.seen, w.order[w.next])
	w.order[w.next] = ref
	w.next = (w.next + 1) % protocol.RefWindow
}
