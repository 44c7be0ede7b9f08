package hub

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// Conn is one client's session in the hub. Its transport calls Handle for
// every frame it reads and writes whatever Next returns, and closes the
// socket with CloseStatus once Done is closed.
type Conn struct {
	hub   *Hub
	id    string
	peer  protocol.Peer // fixed at Join, but for LastSeen
	quiet bool          // no presence pushed to it

	lastSeen  atomic.Int64 // unix nanos of the last frame or pong
	lastFrame atomic.Int64 // unix nanos of the last application frame (not pongs)

	// provisional: the client said hello with provisional; it is written
	// messages before their commit and told of commits with acks.
	// early: it reads messages before their commit (provisional, or a
	// client of the older protocol, which has no seqs to protect).
	provisional, early bool

	mu          sync.Mutex
	ctrl        []protocol.Frame // replies and presence waiting for the writer
	ctrlBytes   int              // about the bytes of ctrl: Options.QueueBytes at most
	pull        int              // mailbox messages to ask for next: fewer after a batch of large ones
	sent        uint64           // highest mailbox seq handed to the writer
	told        uint64           // provisional: highest seq an ack to the client said is committed
	provHigh    uint64           // provisional: highest seq handed to the writer marked provisional
	notify      chan struct{}    // cap 1: something to write
	done        chan struct{}    // closed by kick
	closeCode   int
	closeReason string

	// Acks are written by one goroutine at a time per connection, the
	// highest asked for when it gets to it (acks are cumulative): a client
	// that acks every message costs a store write per commit, not per ack,
	// and neither its reader nor its writer waits for the disk.
	ackMu     sync.Mutex
	ackWant   uint64
	ackDone   uint64
	ackActive bool          // a writeAcks is due or running
	ackTimer  *time.Timer   // starts the writeAcks due (ackLinger)
	ackIdle   chan struct{} // closed when that writeAcks is done

	// The client's sends not settled by the store yet: a history request
	// waits for them, so a client reads its own writes.
	sends inFlight

	// wmu is the write role: whoever holds it takes the connection's next
	// frames and writes them, so frames leave in the order they were
	// taken. The transport's writer holds it from Next to Wrote; a sender
	// whose message wakes the connection while the writer is idle takes
	// it and writes the frames itself, through inline (see wakeHere).
	wmu    sync.Mutex
	inline atomic.Pointer[InlineWriter]
	// readAhead reports whether the client's next frames are read
	// already (it pipelines); called on its reader only.
	readAhead func() bool
}

// InlineWriter is how a sender's goroutine writes a connection's frames
// when the connection's writer is idle (Conn.wakeHere).
type InlineWriter interface {
	// Room is about how many bytes the connection can take now without a
	// write blocking; 0 when none, or when it cannot tell.
	Room() int
	// Write writes frames, holding the write role. It writes every one
	// or closes the connection.
	Write(frames []protocol.Frame)
}

func (c *Conn) sendStarted() { c.sends.begin() }

func (c *Conn) sendSettled() { c.sends.end() }

// waitSends waits until the client's sends so far are settled.
func (c *Conn) waitSends(ctx context.Context) { c.sends.wait(ctx) }

// ID is the client id of the connection.
func (c *Conn) ID() string { return c.id }

// Done is closed when the hub wants the connection closed (replaced, slow,
// shutting down, or left).
func (c *Conn) Done() <-chan struct{} { return c.done }

// CloseStatus is the close code and reason the transport should send once
// Done is closed.
func (c *Conn) CloseStatus() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode, c.closeReason
}

// Touch records that the client was heard from (a frame or a pong).
func (c *Conn) Touch() { c.lastSeen.Store(c.hub.opts.Now().UnixNano()) }

// LastFrame is when the client last sent an application frame; pongs do
// not count. Before its first frame it is the time of its hello.
func (c *Conn) LastFrame() time.Time { return time.Unix(0, c.lastFrame.Load()) }

// LastSeen is when the client was last heard from.
func (c *Conn) LastSeen() time.Time { return time.Unix(0, c.lastSeen.Load()) }

func (c *Conn) peerInfo() protocol.Peer {
	p := c.peer
	p.LastSeen = c.LastSeen().UTC()
	p.Status = c.hub.statusWatch.statusOf(c)
	p.ConnectedSince = p.ConnectedSince.UTC()
	return p
}

func (c *Conn) sessionInfo(now time.Time) store.SessionInfo {
	return store.SessionInfo{ID: c.id, Host: c.peer.Host, PID: c.peer.PID, Cwd: c.peer.Cwd, Agent: c.peer.Agent,
		Label: c.peer.Label, FirstSeen: now, LastSeen: now}
}

// kick asks the transport to close the connection. The first reason wins.
func (c *Conn) kick(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeCode != 0 {
		return
	}
	c.closeCode, c.closeReason = code, reason
	close(c.done)
}

// Kick closes the connection with code and reason (keepalive failure,
// policy violations found by the transport).
func (c *Conn) Kick(code int, reason string) { c.kick(code, reason) }

// wake tells the writer there is something to write.
func (c *Conn) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// wakeHere writes what there is to write on the calling goroutine when the
// connection's writer is idle and its socket has room for it, and wakes the
// writer otherwise. A round trip through the relay then costs no hand-off
// between goroutines, which on a busy machine is most of its latency.
// Since the socket has room, the write does not block on a client that
// stopped reading: that client's writer is the one that waits for it.
// Only a client's reader calls it, for that client's own send.
func (c *Conn) wakeHere() {
	w := c.inline.Load()
	if w == nil || !c.wmu.TryLock() {
		c.wake()
		return
	}
	room := 0
	select {
	case <-c.done: // kicked: its writer winds it up
	default:
		room = (*w).Room()
	}
	if room <= 0 {
		c.wmu.Unlock()
		c.wake()
		return
	}
	frames, _, _ := c.collect(context.Background(), nil, room)
	if len(frames) > 0 {
		c.hub.stats.FramesInline.Add(int64(len(frames)))
		(*w).Write(frames)
	}
	c.wmu.Unlock()
}

// SetInlineWriter lets senders write the connection's frames themselves
// with w when its writer is idle; nil stops it.
func (c *Conn) SetInlineWriter(w InlineWriter) {
	if w == nil {
		c.inline.Store(nil)
		return
	}
	c.inline.Store(&w)
}

// SetReadAhead tells the connection how to see that its client's next
// frames wait to be read: a client that pipelines its sends gets them
// written by the writers, which batch (see sendMsg). Called by the reader
// before it hands the connection its first frame.
func (c *Conn) SetReadAhead(f func() bool) { c.readAhead = f }

// Wrote releases the write role that Next took with the frames it
// returned: the transport calls it once they are written.
func (c *Conn) Wrote() { c.wmu.Unlock() }

// push queues a non-message frame for the writer. A writer that has let
// ControlQueue frames pile up is too slow: it is closed, and since messages
// live in its mailbox, it loses none of them.
func (c *Conn) push(f protocol.Frame) {
	if c.queue(f) {
		c.wake()
	}
}

// pushHere is push from a goroutine that may write the frame itself (see
// wakeHere).
func (c *Conn) pushHere(f protocol.Frame) {
	if c.queue(f) {
		c.wakeHere()
	}
}

// queue adds f to the frames for the writer; false if the connection is
// closing (or was closed now, as too slow).
func (c *Conn) queue(f protocol.Frame) bool {
	c.mu.Lock()
	if c.closeCode != 0 {
		c.mu.Unlock()
		return false
	}
	n := frameBytes(f)
	if len(c.ctrl) >= c.hub.opts.ControlQueue || len(c.ctrl) > 0 && c.ctrlBytes+n > c.hub.opts.QueueBytes {
		queued, bytes := len(c.ctrl), c.ctrlBytes
		c.ctrl, c.ctrlBytes = nil, 0 // the memory goes now, not when the socket is gone
		c.mu.Unlock()
		c.hub.stats.SlowConsumers.Add(1)
		c.hub.log.Warn("closing slow consumer", "client", c.id, "queued_frames", queued, "queued_bytes", bytes)
		c.kick(protocol.CloseSlowConsumer, protocol.CloseReason(protocol.CloseSlowConsumer))
		return false
	}
	c.ctrl = append(c.ctrl, f)
	c.ctrlBytes += n
	c.mu.Unlock()
	return true
}

// Next blocks until there is something to write and returns it: queued
// replies first, then the next messages of the mailbox in seq order. It
// returns ctx.Err() when ctx ends and nil, nil once Done is closed. With
// frames it returns holding the write role: the caller writes them and
// then calls Wrote.
func (c *Conn) Next(ctx context.Context, buf []protocol.Frame) ([]protocol.Frame, error) {
	for {
		c.wmu.Lock()
		frames, stop, err := c.collect(ctx, buf, 0)
		if len(frames) > 0 && err == nil && !stop {
			return frames, nil
		}
		c.wmu.Unlock()
		if err != nil || stop {
			return nil, err
		}
		select {
		case <-c.notify:
		case <-c.done:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// collect takes what there is to write now, without waiting; stop reports
// that nothing more may be written (the connection was kicked). room > 0
// bounds the bytes it takes (about; see frameBytes), for a write that must
// not block: what does not fit is left to the writer, which it wakes.
func (c *Conn) collect(ctx context.Context, buf []protocol.Frame, room int) (_ []protocol.Frame, stop bool, _ error) {
	buf = buf[:0]
	c.mu.Lock()
	maxBytes := c.hub.opts.QueueBytes
	if room > 0 {
		if c.ctrlBytes > room {
			c.mu.Unlock()
			c.wake()
			return nil, false, nil
		}
		maxBytes = min(maxBytes, room-c.ctrlBytes)
	}
	buf = append(buf, c.ctrl...)
	clear(c.ctrl)
	c.ctrl = c.ctrl[:0]
	c.ctrlBytes = 0
	after := c.sent
	pull := c.pull
	if pull <= 0 {
		pull = c.hub.opts.PullBatch
	}
	c.mu.Unlock()

	pending, err := c.hub.store.Pending(ctx, c.id, after, pull, c.early)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		// What was stored stays stored; the next wake tries again.
		c.hub.log.Error("reading mailbox failed", "client", c.id, "err", err)
	}
	cut, fit := false, 0
	if len(pending) > 0 {
		// A batch stops at QueueBytes (at least one message, but for a
		// write bounded by room), and the next asks for about as many as
		// fitted: a mailbox of large messages is read a few MiB at a time.
		size := 0
		for fit < len(pending) {
			n := len(pending[fit].Msg.Body)
			if room > 0 {
				n = storedBytes(&pending[fit].Msg)
			}
			if size+n > maxBytes && (fit > 0 || room > 0) {
				break
			}
			size += n
			fit++
		}
		cut = fit < len(pending)
		pending = pending[:fit]
	}
	var committed uint64
	if c.provisional {
		// Read after the mailbox: a commit confirmed here covers
		// nothing the client was not handed.
		committed, _ = c.hub.store.LastSeq(ctx, c.id)
	}
	c.mu.Lock()
	if c.closeCode != 0 && c.provisional {
		// Kicked (perhaps to withdraw provisional messages whose
		// commit failed): write nothing more, above all no ack.
		c.mu.Unlock()
		return nil, true, nil
	}
	// A message read committed implies every seq before it is: the
	// ack for the provisional ones handed earlier goes first, so the
	// client never takes a message before the ones ahead of it.
	if c.provisional && c.provHigh > c.told && committed > c.told {
		c.told = min(committed, c.provHigh)
		buf = append(buf, &protocol.Ack{Upto: c.told})
	}
	for _, d := range pending {
		buf = append(buf, d.ToProtocol())
		if d.Provisional && c.provisional {
			c.provHigh = d.Seq
		}
	}
	if len(pending) > 0 {
		c.sent = pending[len(pending)-1].Seq
		if room == 0 {
			if cut {
				c.pull = fit
			} else {
				c.pull = min(2*pull, c.hub.opts.PullBatch)
			}
		}
	}
	if cut || len(pending) > 0 && len(pending) == pull {
		c.wake() // more may wait beyond this batch: come back without waiting
	}
	if c.provisional && c.provHigh > c.told && committed > c.told {
		c.told = min(committed, c.provHigh)
		buf = append(buf, &protocol.Ack{Upto: c.told})
	}
	c.mu.Unlock()
	if len(buf) > 0 {
		c.hub.stats.FramesToClient.Add(int64(len(buf)))
		return buf, false, nil
	}
	return nil, false, nil
}

// Handle acts on one decoded frame from the client and queues the reply, if
// any, for the writer. Frames a client may not send are refused with an
// error reply.
func (c *Conn) Handle(ctx context.Context, f protocol.Frame) {
	c.Touch()
	c.lastFrame.Store(c.hub.opts.Now().UnixNano())
	if perr := c.hub.allowFrame(c, f); perr != nil {
		c.push(perr.Frame())
		return
	}
	if reply := c.handle(ctx, f); reply != nil {
		c.push(reply)
	}
}

func (c *Conn) handle(ctx context.Context, f protocol.Frame) protocol.Frame {
	h := c.hub
	switch f := f.(type) {
	case *protocol.Send:
		h.sendMsg(ctx, c, f) // answers when the store has settled it
		return nil
	case *protocol.Ack:
		c.ack(f.Upto)
		return nil
	case *protocol.Read:
		h.markReadLater(c, f.IDs, f.Upto)
		return nil
	case *protocol.Receipts:
		return h.receipts(ctx, c, f)
	case *protocol.Peers:
		// The unread counts include the client's own sends so far: a
		// client may write a send and a peers request back to back and
		// read its recipients' counts with this message in them.
		c.waitSends(ctx)
		return &protocol.Peers{Ref: f.Ref, Peers: h.peersWithReads(ctx)}
	case *protocol.Sessions:
		s, err := h.Sessions(ctx)
		if err != nil {
			return storeError(f.Ref, err)
		}
		return &protocol.Sessions{Ref: f.Ref, Sessions: s}
	case *protocol.History:
		c.waitSends(ctx) // the client's own sends are in its history
		msgs, more, err := h.store.History(ctx, store.HistoryQuery{Client: c.id, With: f.With, Thread: f.Thread, Before: f.Before, After: f.After, Limit: f.Limit})
		if err != nil {
			return storeError(f.Ref, err)
		}
		out := &protocol.History{Ref: f.Ref, With: f.With, Thread: f.Thread, Before: f.Before, After: f.After, Limit: f.Limit, More: more, Messages: make([]protocol.Message, len(msgs))}
		for i, m := range msgs {
			out.Messages[i] = *m.ToProtocol()
		}
		return out
	case *protocol.Clear:
		c.waitSends(ctx)
		c.flushAcks() // what the client holds is read, and cleared with the rest
		n, err := h.store.Clear(ctx, c.id, f.IncludeUnread)
		if err != nil {
			return storeError(f.Ref, err)
		}
		if f.IncludeUnread {
			c.mu.Lock()
			if last, err := h.store.LastSeq(ctx, c.id); err == nil {
				c.sent = max(c.sent, last)
			}
			c.mu.Unlock()
		}
		return &protocol.Cleared{Ref: f.Ref, Cleared: n}
	case *protocol.Hello:
		return &protocol.ErrorFrame{Code: protocol.CodeAlreadyHello, Message: "this connection already said hello as " + c.id + "; open a new connection for another id"}
	default:
		if reply, ok := c.handleStatusWatch(ctx, f); ok {
			return reply
		}
		return &protocol.ErrorFrame{Code: protocol.CodeUnexpected, Message: "a client may not send " + f.Type() + " frames; they go from the relay to clients"}
	}
}

// releaseMemory hands the memory a slow consumer's queue held back to the
// system soon after its connection is gone (once its handler has
// returned), at most once per memoryReleaseEvery: the Go runtime would
// otherwise keep it for minutes, so a relay cut loose from a flood would
// still look as large as at the flood's peak.
func (h *Hub) releaseMemory() {
	now := time.Now().UnixNano()
	last := h.lastRelease.Load()
	if now-last < int64(memoryReleaseEvery) || !h.lastRelease.CompareAndSwap(last, now) {
		return
	}
	time.AfterFunc(time.Second, debug.FreeOSMemory)
}

const memoryReleaseEvery = 5 * time.Second

// frameBytes is about the size of f encoded: what a reply holds in memory
// while it waits for the writer.
// storedBytes is about the bytes of m's message frame, as frameBytes counts
// them.
func storedBytes(m *store.Message) int {
	return messageBytes(m.Body, m.From, m.Thread, m.ReplyTo, m.To)
}

// messageBytes is about the bytes of a message frame with these fields:
// the one estimate behind frameBytes and storedBytes.
func messageBytes(body, from, thread, replyTo string, to []string) int {
	n := 160 + len(body) + len(from) + len(thread) + len(replyTo)
	for _, id := range to {
		n += len(id) + 3
	}
	return n
}

func frameBytes(f protocol.Frame) int {
	msg := func(m *protocol.Message) int { return messageBytes(m.Body, m.From, m.Thread, m.ReplyTo, m.To) }
	switch f := f.(type) {
	case *protocol.History:
		n := 128
		for i := range f.Messages {
			n += msg(&f.Messages[i])
		}
		return n
	case *protocol.Message:
		return msg(f)
	}
	return 256
}

// ackLinger is how long the ack of a client of the older protocol waits
// for the ones after it before it is written. Such a client is acked after
// every burst its writer sends — in a conversation, every message, and
// each ack cost two commits (the ack and the read) beside the message's
// own. Acks are cumulative: one write per linger covers them all. A
// protocol v1 client's own acks are written at once: it may count on the
// room they make (max-queue) straight away.
const ackLinger = 2 * time.Millisecond

// ack records that the client holds every seq up to upto, without making
// the caller wait: see ackMu.
func (c *Conn) ack(upto uint64) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	c.ackWant = max(c.ackWant, upto)
	if c.ackActive {
		return
	}
	c.ackActive = true
	c.ackIdle = make(chan struct{})
	if c.peer.Legacy {
		c.ackTimer = time.AfterFunc(ackLinger, c.writeAcks)
		return
	}
	go c.writeAcks()
}

// flushAcks returns once the acks asked for so far are written, writing
// those still lingering now. The connection is leaving (so the others
// hear it left, the client may reconnect and the store may close — after
// its acks, so a reconnect is not sent again what it was sent), or asks to
// clear its mailbox (what it holds is read, and cleared with the rest).
func (c *Conn) flushAcks() {
	c.ackMu.Lock()
	active, t, idle := c.ackActive, c.ackTimer, c.ackIdle
	c.ackMu.Unlock()
	if !active {
		return
	}
	if t != nil && t.Stop() {
		c.writeAcks() // the timer had not fired: nobody else will
		return
	}
	<-idle // being written
}

func (c *Conn) writeAcks() {
	h := c.hub
	ctx := context.Background() // the connection may end; its acks still count
	for {
		c.ackMu.Lock()
		upto := c.ackWant
		if upto <= c.ackDone {
			c.ackActive = false
			close(c.ackIdle)
			c.ackMu.Unlock()
			return
		}
		c.ackMu.Unlock()
		if err := h.store.Ack(ctx, c.id, upto); err != nil {
			h.log.Warn("ack not recorded", "client", c.id, "upto", upto, "err", err)
		}
		if c.peer.Legacy {
			h.markRead(ctx, c, nil, upto) // no read concept: what it holds it has read
		}
		h.emit(Event{Kind: EventStage, Client: c.id})
		c.ackMu.Lock()
		c.ackDone = upto
		c.ackMu.Unlock()
	}
}

// Push queues a frame for the writer: transports use it for errors about
// frames that could not be decoded.
func (c *Conn) Push(f protocol.Frame) { c.push(f) }

func storeError(ref string, err error) protocol.Frame {
	return &protocol.ErrorFrame{Ref: ref, Code: protocol.CodeStoreUnavailable, Message: "the relay could not read its store: " + err.Error()}
}
