// Package relaytest is a fake protocol v1 relay (mailboxes with
// per-recipient seq, resume, acks, takeover and no_takeover refusal, send
// refs remembered for retries) for the tests of relay-mcp's link and one
// benchmark of its tools. It stays only for what the real relay cannot be
// made to do at a moment a test chooses:
//
//   - DropNextAccepted: store a send, then cut the sender's connection
//     before its accepted is written (link: a retried send is stored once).
//   - SetDown: drop every connection with 1001 and answer none, then serve
//     the same mailboxes at the same URL again, without a restart (link:
//     offline queue, resume, failover between relays).
//   - Kick: close one client's connection with a chosen close code.
//   - Inject: put a message in a mailbox with no sending client, so the
//     time measured is relay-mcp's alone (tools' BenchmarkReceiveWake).
//   - Delivered: count the copies a mailbox holds.
//
// What an agent sees through a relay is tested against the real one,
// relayd, in module relay-mcp/e2e (package relayd/relaytest).
package relaytest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/coder/websocket"
)

// Relay is a running fake relay.
type Relay struct {
	srv *httptest.Server

	mu      sync.Mutex
	nextID  int
	boxes   map[string]*box // by client id: everyone ever seen
	online  map[string]*client
	refused map[string]bool               // ids whose hello is refused
	refs    map[string]*protocol.Accepted // client id + "\x00" + ref + "\x00" + body → answer
	reads   map[string][]string           // by client id: every id its read frames named, in order
	down    atomic.Bool
	// dropNext: cut the sender's connection after storing the next send,
	// before its accepted is written (see DropNextAccepted).
	dropNext atomic.Bool
	// unstorable: sends answered store_unavailable, nothing stored (see
	// RefuseSends).
	unstorable atomic.Int32
}

// DropNextAccepted makes the relay store the next send and then cut the
// sender's connection instead of answering it: the client cannot know
// whether its message went through.
func (r *Relay) DropNextAccepted() { r.dropNext.Store(true) }

// RefuseSends answers the next n sends with store_unavailable and stores
// none of them, as a relay whose store is briefly down (a cluster electing
// a stream leader).
func (r *Relay) RefuseSends(n int) { r.unstorable.Store(int32(n)) }

// Delivered counts the copies of messages with body held for id.
func (r *Relay) Delivered(id, body string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	if b := r.boxes[id]; b != nil {
		for _, m := range b.msgs {
			if m.Body == body {
				n++
			}
		}
	}
	return n
}

// ReadsReported is every message id id's read frames named, in order,
// repeats included.
func (r *Relay) ReadsReported(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reads[id]...)
}

// SetDown makes the relay drop new connections unanswered and drops the open ones
// with 1001, as a relay that went away; SetDown(false) brings it back.
func (r *Relay) SetDown(down bool) {
	r.down.Store(down)
	if down {
		r.mu.Lock()
		var cs []*client
		for _, c := range r.online {
			cs = append(cs, c)
		}
		r.mu.Unlock()
		for _, c := range cs {
			c.conn.Close(websocket.StatusGoingAway, "relay shutting down")
		}
	}
}

type box struct {
	seq   uint64
	acked uint64
	msgs  []protocol.Message
	first time.Time
	last  time.Time
}

type client struct {
	id    string
	conn  *websocket.Conn
	hello protocol.Hello
	since time.Time
	wmu   sync.Mutex
}

// New starts a fake relay; it stops at test cleanup.
func New(tb interface{ Cleanup(func()) }) *Relay {
	r := &Relay{boxes: map[string]*box{}, online: map[string]*client{}, refused: map[string]bool{}, refs: map[string]*protocol.Accepted{}, reads: map[string][]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	tb.Cleanup(r.Close)
	return r
}

// URL is the ws:// URL of the relay's /v1/ws endpoint.
func (r *Relay) URL() string { return "ws" + strings.TrimPrefix(r.srv.URL, "http") + "/v1/ws" }

// Close stops the relay, closing every connection with 1001.
func (r *Relay) Close() {
	r.mu.Lock()
	for _, c := range r.online {
		c.conn.Close(websocket.StatusGoingAway, "relay shutting down")
	}
	r.mu.Unlock()
	r.srv.CloseClientConnections()
	r.srv.Close()
}

// Kick closes id's connection with code.
func (r *Relay) Kick(id string, code int) {
	r.mu.Lock()
	c := r.online[id]
	r.mu.Unlock()
	if c != nil {
		c.conn.Close(websocket.StatusCode(code), protocol.CloseReason(code))
	}
}

// Inject delivers a message from "from" to id as if sent.
func (r *Relay) Inject(from, to, body string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.boxes[to] == nil {
		r.boxes[to] = &box{first: time.Now()}
	}
	return r.deliverLocked(from, []string{to}, &protocol.Send{Body: body}, to)
}

func (r *Relay) serve(w http.ResponseWriter, req *http.Request) {
	if r.down.Load() {
		// A relay that is gone answers nothing: drop the connection, as
		// a closed port would, so clients see a dial failure.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	conn, err := websocket.Accept(w, req, nil)
	if err != nil {
		return
	}
	conn.SetReadLimit(int64(protocol.DefaultMaxFrameBytes))
	ctx := req.Context()
	_, data, err := conn.Read(ctx)
	if err != nil {
		return
	}
	f, err := protocol.Decode(data)
	h, ok := f.(*protocol.Hello)
	if err != nil || !ok {
		conn.Close(protocol.CloseBadHello, "hello required")
		return
	}
	c := &client{id: h.ClientID, conn: conn, hello: *h, since: time.Now()}
	r.mu.Lock()
	var replaced *protocol.Replaced
	if old := r.online[h.ClientID]; old != nil && h.NoTakeover {
		r.mu.Unlock()
		c.send(&protocol.ErrorFrame{Code: protocol.CodeIDInUse, Message: "this client id is online on another connection"})
		conn.Close(protocol.CloseIDInUse, protocol.CloseReason(protocol.CloseIDInUse))
		return
	} else if old != nil {
		replaced = &protocol.Replaced{Host: old.hello.Host, PID: old.hello.PID}
		go old.conn.Close(protocol.CloseReplaced, "replaced")
	}
	r.online[h.ClientID] = c
	b := r.boxes[h.ClientID]
	if b == nil {
		b = &box{first: time.Now()}
		r.boxes[h.ClientID] = b
	}
	b.last = time.Now()
	var peers []protocol.Peer
	if !h.Quiet {
		peers = r.peersLocked()
	}
	var backlog []protocol.Message
	for _, m := range b.msgs {
		if m.Seq > h.ResumeAfter && m.Seq > b.acked {
			backlog = append(backlog, m)
		}
	}
	// Welcome and backlog are written under r.mu so live messages follow them.
	c.send(&protocol.Welcome{Server: "relaytest", Proto: 1, ClientID: h.ClientID, Peers: peers, Replaced: replaced, HeartbeatMS: 15000, Backlog: len(backlog), LastSeq: b.seq})
	for i := range backlog {
		c.send(&backlog[i])
	}
	for _, o := range r.online {
		if o != c && !o.hello.Quiet {
			go o.send(&protocol.Presence{Event: protocol.PresenceJoined, Peer: c.peer()})
		}
	}
	r.mu.Unlock()

	defer func() {
		r.mu.Lock()
		if r.online[c.id] == c {
			delete(r.online, c.id)
			for _, o := range r.online {
				if !o.hello.Quiet {
					go o.send(&protocol.Presence{Event: protocol.PresenceLeft, Peer: c.peer()})
				}
			}
		}
		r.mu.Unlock()
		conn.CloseNow()
	}()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		f, err := protocol.Decode(data)
		if err != nil {
			pe := err.(*protocol.Error)
			c.send(pe.Frame())
			continue
		}
		r.handle(c, f)
	}
}

func (c *client) peer() protocol.Peer {
	return protocol.Peer{ID: c.id, Host: c.hello.Host, PID: c.hello.PID, Cwd: c.hello.Cwd, Agent: c.hello.Agent, Label: c.hello.Label, ConnectedSince: c.since, LastSeen: time.Now()}
}

func (c *client) send(f protocol.Frame) {
	data, _ := protocol.Encode(f)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.conn.Write(ctx, websocket.MessageText, data)
}

func (r *Relay) peersLocked() []protocol.Peer {
	var out []protocol.Peer
	for _, c := range r.online {
		out = append(out, c.peer())
	}
	return out
}

func (r *Relay) deliverLocked(from string, to []string, s *protocol.Send, only string) string {
	r.nextID++
	id := fmt.Sprintf("m%06d", r.nextID)
	now := time.Now().UTC()
	for _, rcpt := range strings.Split(only, ",") {
		b := r.boxes[rcpt]
		b.seq++
		m := protocol.Message{Seq: b.seq, ID: id, From: from, To: to, Body: s.Body, TS: now, ReplyTo: s.ReplyTo, Thread: s.Thread}
		b.msgs = append(b.msgs, m)
		if c := r.online[rcpt]; c != nil {
			c.send(&m)
		}
	}
	return id
}

func (r *Relay) handle(c *client, f protocol.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch f := f.(type) {
	case *protocol.Send:
		if r.unstorable.Add(-1) >= 0 {
			c.send(&protocol.ErrorFrame{Ref: f.Ref, Code: protocol.CodeStoreUnavailable, Message: "message store unavailable", RetryAfterMS: 50})
			return
		}
		r.unstorable.CompareAndSwap(-1, 0)
		key := c.id + "\x00" + f.Ref + "\x00" + f.Body
		if acc := r.refs[key]; acc != nil {
			c.send(acc) // a retry: the original answer, not a second delivery
			return
		}
		var targets []string
		if f.To.IsBroadcast() {
			for id := range r.online {
				if id != c.id {
					targets = append(targets, id)
				}
			}
		} else {
			targets = f.To
		}
		acc := &protocol.Accepted{Ref: f.Ref, TS: time.Now().UTC()}
		var deliver []string
		for _, t := range targets {
			st := protocol.StatusQueued
			switch {
			case r.online[t] != nil:
				st = protocol.StatusDelivered
			case r.boxes[t] == nil && !f.QueueIfUnknown:
				st = protocol.StatusUnknown
			}
			if st != protocol.StatusUnknown {
				if r.boxes[t] == nil {
					r.boxes[t] = &box{first: time.Now()}
				}
				deliver = append(deliver, t)
			}
			acc.Recipients = append(acc.Recipients, protocol.Outcome{ID: t, Status: st})
		}
		to := []string(f.To)
		if len(deliver) > 0 {
			acc.ID = r.deliverLocked(c.id, to, f, strings.Join(deliver, ","))
		} else {
			r.nextID++
			acc.ID = fmt.Sprintf("m%06d", r.nextID)
		}
		r.refs[key] = acc
		if r.dropNext.CompareAndSwap(true, false) {
			go c.conn.CloseNow()
			return
		}
		c.send(acc)
	case *protocol.Ack:
		if b := r.boxes[c.id]; b != nil && f.Upto > b.acked {
			b.acked = f.Upto
		}
	case *protocol.Read:
		r.reads[c.id] = append(r.reads[c.id], f.IDs...) // keeps no receipts
	case *protocol.Peers:
		c.send(&protocol.Peers{Ref: f.Ref, Peers: r.peersLocked()})
	case *protocol.Receipts:
		c.send(&protocol.Receipts{Ref: f.Ref, IDs: f.IDs}) // keeps no receipts
	case *protocol.Sessions:
		var out []protocol.Session
		for id, b := range r.boxes {
			s := protocol.Session{ID: id, Online: r.online[id] != nil, FirstSeen: b.first, LastSeen: b.last}
			out = append(out, s)
		}
		c.send(&protocol.Sessions{Ref: f.Ref, Sessions: out})
	case *protocol.Clear:
		b := r.boxes[c.id]
		n := 0
		kept := b.msgs[:0]
		for _, m := range b.msgs {
			if m.Seq <= b.acked || f.IncludeUnread {
				n++
				continue
			}
			kept = append(kept, m)
		}
		b.msgs = kept
		c.send(&protocol.Cleared{Ref: f.Ref, Cleared: n})
	case *protocol.History:
		c.send(&protocol.History{Ref: f.Ref, Messages: r.boxes[c.id].msgs})
	default:
		c.send(&protocol.ErrorFrame{Code: protocol.CodeUnexpected, Message: "unexpected " + f.Type()})
	}
}
