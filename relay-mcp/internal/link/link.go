// Package link is the session's WebSocket client: it dials the relay, says
// hello with the last seq the inbox holds, stores pushed mail in the inbox
// and acks it once it is durable, answers requests by ref, flushes the outbox
// in order, measures round trips, and reconnects with capped exponential
// backoff and jitter until it is closed or told to stop (4409 replaced and
// the other "do not reconnect" codes).
package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/coder/websocket"
)

// State is where the link stands.
type State string

const (
	StateConnecting   State = "connecting"   // first attempt under way
	StateConnected    State = "connected"    // welcome received
	StateReconnecting State = "reconnecting" // lost or never reached; retrying with backoff
	StateStopped      State = "stopped"      // told not to reconnect (replaced, unauthorized …)
	StateClosed       State = "closed"       // closed by this process
)

// Errors returned by requests.
var (
	ErrOffline      = errors.New("relay offline")
	ErrDisconnected = errors.New("connection to the relay was lost before it answered")
)

// RelayError is an error frame the relay answered a request with.
type RelayError struct{ Frame *protocol.ErrorFrame }

func (e *RelayError) Error() string {
	return fmt.Sprintf("relay refused: %s (%s)", e.Frame.Message, e.Frame.Code)
}

// Config configures a Link. URL (or URLs), Hello.ClientID and Inbox are
// required.
type Config struct {
	URL   string // normalised with ParseURL
	Token string // sent as Authorization: Bearer when set
	// TLS configures wss:// connections (RootCAs from --ca-file); nil uses
	// the system's roots.
	TLS    *tls.Config
	Hello  protocol.Hello // identity and metadata; Proto and ResumeAfter are filled in
	Inbox  *inbox.Inbox
	Outbox *inbox.Outbox // optional: sends made while offline
	Logger *slog.Logger

	// MinBackoff is the first reconnect delay. Defaults to 250ms.
	MinBackoff time.Duration
	// MaxBackoff caps the reconnect delay. Defaults to 30s.
	MaxBackoff time.Duration
	// PingInterval is how often the link pings the relay to measure the
	// round trip and notice a dead connection. Defaults to 15s.
	PingInterval time.Duration
	// WriteTimeout bounds every frame write. Defaults to 5s.
	WriteTimeout time.Duration

	// OnMessages is called with newly stored mail (not duplicates).
	OnMessages func([]inbox.Entry)
	// OnPresence is called for every presence frame.
	OnPresence func(protocol.Presence)
	// OnMail is called for every mail event (see Watch).
	OnMail func(protocol.Mail)

	// URLs, when set, are relays that serve the same mailboxes (the nodes
	// of a cluster), tried in order; URL is then ignored. See failover.go.
	URLs []string
}

// Status is a snapshot of the link for relay_status.
type Status struct {
	State       State
	URL         string
	ClientID    string
	Server      string        // relay version from welcome
	Since       time.Time     // when the current connection opened, or the state began
	Reconnects  int           // successful connections after the first
	LastRTT     time.Duration // last ping round trip; 0 if none yet
	LastError   string        // why the last connection failed or closed
	StopReason  string        // set in StateStopped
	StopCode    int           // set in StateStopped: the close code (4409, 4509 …), or 0
	Outbox      int           // sends waiting for the relay
	NextAttempt time.Time     // when reconnecting: the next dial
	// Refused: the last dial was refused at once (nothing listens there),
	// as opposed to timing out or failing later.
	Refused bool
	// URLs is the relays this link fails over between, when more than
	// one; URL is the one connected or tried last.
	URLs []string
}

// Link is a reconnecting relay client. Create it with New and run it with Run.
type Link struct {
	cfg Config
	log *slog.Logger

	mu          sync.Mutex
	cur         int // index in cfg.URLs of the relay connected or tried last
	conn        *websocket.Conn
	connCtx     context.Context
	state       State
	since       time.Time
	server      string
	reconnects  int
	connected   int // connections that reached welcome
	lastRTT     time.Duration
	lastErr     string
	refused     bool // the last dial was refused (ECONNREFUSED)
	stopReason  string
	stopCode    int
	nextAttempt time.Time
	backlogLeft int           // messages of the welcome backlog not yet stored
	caughtUp    chan struct{} // closed once the current connection's backlog is stored
	peers       map[string]protocol.Peer
	pending     map[string]chan protocol.Frame
	waiters     map[string]chan SendResult // outbox refs awaited by a tool call
	stateCh     chan struct{}              // closed at each state change
	kickFlush   chan struct{}
	ackCh       chan uint64
	rename      *renameReq // asked for by Rename, applied between connections (rename.go)
}

// New returns a link; nothing happens until Run.
func New(cfg Config) *Link {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if len(cfg.URLs) == 0 {
		cfg.URLs = []string{cfg.URL}
	}
	cfg.URL = cfg.URLs[0]
	cfg.Hello.Proto = protocol.Version
	fitMeta(&cfg.Hello, cfg.Logger)
	return &Link{
		cfg:       cfg,
		log:       cfg.Logger,
		state:     StateConnecting,
		since:     time.Now(),
		peers:     map[string]protocol.Peer{},
		pending:   map[string]chan protocol.Frame{},
		waiters:   map[string]chan SendResult{},
		stateCh:   make(chan struct{}),
		kickFlush: make(chan struct{}, 1),
		ackCh:     make(chan uint64, 1),
	}
}

// ClientID is the id this link connects as.
func (l *Link) ClientID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg.Hello.ClientID
}

// URL is the relay URL connected or tried last.
func (l *Link) URL() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg.URLs[l.cur]
}

func (l *Link) setState(s State, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setStateLocked(s, why)
}

func (l *Link) setStateLocked(s State, why string) {
	if l.state == StateStopped || l.state == StateClosed {
		return
	}
	if s == StateStopped {
		l.stopReason = why
	}
	if why != "" && s != StateConnected {
		l.lastErr = why
	}
	l.state = s
	l.since = time.Now()
	close(l.stateCh)
	l.stateCh = make(chan struct{})
}

// StateChanged returns a channel closed at the next state change.
func (l *Link) StateChanged() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stateCh
}

// Status returns a snapshot.
func (l *Link) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{
		State: l.state, URL: l.cfg.URLs[l.cur], ClientID: l.cfg.Hello.ClientID, Server: l.server,
		Since: l.since, Reconnects: l.reconnects, LastRTT: l.lastRTT, LastError: l.lastErr,
		StopReason: l.stopReason, StopCode: l.stopCode, NextAttempt: l.nextAttempt,
		Refused: l.refused,
	}
	if l.cfg.Outbox != nil {
		st.Outbox = l.cfg.Outbox.Len()
	}
	if len(l.cfg.URLs) > 1 {
		st.URLs = l.cfg.URLs
	}
	return st
}

// Peers returns the peers online as last reported by the relay, by id.
func (l *Link) Peers() []protocol.Peer {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]protocol.Peer, 0, len(l.peers))
	for _, p := range l.peers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Run connects and keeps reconnecting until ctx ends or the relay says not
// to. On return the connection is closed (normal closure when ctx ended).
func (l *Link) Run(ctx context.Context) error {
	attempt := 0
	misses := 0 // attempts in a row that did not reach a welcome
	for {
		l.applyRename() // asked for while no connection was live
		welcomed, err := l.connectOnce(ctx)
		if ctx.Err() == nil && l.applyRename() {
			attempt, misses = 0, 0
			continue // at once, as the new id
		}
		if ctx.Err() != nil {
			l.mu.Lock()
			l.state = StateClosed
			l.since = time.Now()
			close(l.stateCh)
			l.stateCh = make(chan struct{})
			l.mu.Unlock()
			return nil
		}
		var stop *stopError
		if errors.As(err, &stop) {
			lvl := slog.LevelWarn
			if stop.code == protocol.CloseIDInUse {
				lvl = slog.LevelInfo // asked for with no_takeover; the caller decides
			}
			l.log.Log(ctx, lvl, "relay told this session not to reconnect", "reason", stop.reason, "code", stop.code)
			l.mu.Lock()
			l.stopCode = stop.code
			l.setStateLocked(StateStopped, stop.reason)
			l.mu.Unlock()
			return err
		}
		if welcomed {
			attempt, misses = 0, 0
		} else {
			misses++
		}
		now := l.failover(misses)
		var d time.Duration
		if !now {
			d = l.backoff(attempt)
			attempt++
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		l.mu.Lock()
		l.nextAttempt = time.Now().Add(d)
		next := StateReconnecting
		if now && l.connected == 0 {
			next = StateConnecting // still the first round through the list
		}
		l.setStateLocked(next, msg)
		url := l.cfg.URLs[l.cur]
		l.mu.Unlock()
		l.log.Info("relay connection lost; will retry", "err", msg, "retry_in", d.Round(time.Millisecond), "next_url", url)
		if d == 0 {
			continue
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// backoff is the delay before attempt n (0-based): exponential from
// MinBackoff, capped at MaxBackoff, with jitter in [d/2, d].
func (l *Link) backoff(n int) time.Duration {
	return Backoff(n, l.cfg.MinBackoff, l.cfg.MaxBackoff)
}

// Backoff is the reconnect delay for attempt n: exponential from min, capped
// at max, with jitter in [d/2, d].
func Backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + time.Duration(mrand.Int64N(int64(half)+1))
}

type stopError struct {
	reason string
	code   int // the close code, when the relay closed with one
}

func (e *stopError) Error() string { return e.reason }

// connectOnce dials, says hello and serves one connection until it ends.
// welcomed reports whether the relay accepted the hello.
func (l *Link) connectOnce(ctx context.Context) (welcomed bool, err error) {
	// The dial's context stays tied to the connection after the upgrade
	// (cancelling it drops the TCP connection at once), so it is not ctx
	// itself: ctx ending aborts the dial, and after the dial serve says
	// goodbye with a close frame instead.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	abort := context.AfterFunc(ctx, cancel)
	opts := &websocket.DialOptions{HTTPClient: l.httpClient()}
	if l.cfg.Token != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + l.cfg.Token}}
	}
	url := l.URL()
	conn, resp, err := websocket.Dial(dctx, url, opts)
	abort()
	l.mu.Lock()
	l.refused = err != nil && errors.Is(err, syscall.ECONNREFUSED)
	l.mu.Unlock()
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return false, &stopError{fmt.Sprintf("relay at %s refused the token (HTTP %d) — set RELAY_TOKEN or --token-file to the relay's token", url, resp.StatusCode), protocol.CloseUnauthorized}
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if hint := dialHint(url, resp, err); hint != "" {
			return false, errors.New(hint)
		}
		return false, fmt.Errorf("relay not reachable at %s (%s) — is relayd running? start it with `relayd`", url, shortErr(err))
	}
	conn.SetReadLimit(maxRelayFrame)

	l.mu.Lock()
	hello := l.cfg.Hello
	l.mu.Unlock()
	// The seq of the last message received, not the highest ever seen: a
	// relay whose store was reset numbers from 1 again (and treats a
	// resume_after beyond its mailbox as 0, resending what it holds, which
	// the inbox dedupes by id).
	hello.ResumeAfter = l.cfg.Inbox.ResumeAfter()
	if hello.Status != "" && protocol.Validate(&protocol.Status{Status: hello.Status}) != nil {
		l.dropStatus(hello.Status, "the relay's rules refuse it")
		hello.Status = ""
	}
	// Messages arrive as soon as they are sent, marked provisional until
	// the relay's store commits them (handle keeps them apart till then).
	hello.Provisional = true
	if err := l.write(ctx, conn, &hello); err != nil {
		conn.CloseNow()
		return false, fmt.Errorf("send hello: %w", err)
	}
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	f, err := readFrame(hctx, conn)
	hcancel()
	if err != nil {
		conn.CloseNow()
		return false, l.classifyClose(err)
	}
	w, ok := f.(*protocol.Welcome)
	if !ok {
		if ef, isErr := f.(*protocol.ErrorFrame); isErr {
			// The relay closes after a refused hello; read the close code.
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			_, cerr := readFrame(rctx, conn)
			rcancel()
			conn.CloseNow()
			if hello.Status != "" {
				// The status is the one part of the hello that changes
				// while the process runs: never let it keep the session
				// offline. Retry without it.
				l.dropStatus(hello.Status, "the relay refused the hello that carried it: "+ef.Message)
				return false, fmt.Errorf("relay refused hello: %s (%s); retrying without the status line", ef.Message, ef.Code)
			}
			if cerr != nil {
				var se *stopError
				if errors.As(l.classifyClose(cerr), &se) {
					return false, &stopError{fmt.Sprintf("relay refused hello: %s (%s)", ef.Message, ef.Code), se.code}
				}
			}
			return false, fmt.Errorf("relay refused hello: %s (%s)", ef.Message, ef.Code)
		}
		conn.CloseNow()
		return false, fmt.Errorf("relay answered hello with %s, not welcome", f.Type())
	}
	return true, l.serve(ctx, conn, w)
}

// dropStatus forgets the kept status line if it is still s.
func (l *Link) dropStatus(s, why string) {
	l.mu.Lock()
	if l.cfg.Hello.Status == s {
		l.cfg.Hello.Status = ""
	}
	l.mu.Unlock()
	l.log.Warn("status line dropped", "status", s, "why", why)
}

// fitMeta makes the hello's metadata fit the relay's rules, which refuse a
// hello with a field over protocol.MaxMetaBytes or with a NUL byte: a
// working directory deep enough, or a long label, would otherwise keep the
// session offline for good. A path keeps its end (the part that names the
// project), other fields their start; both are marked with "…".
func fitMeta(h *protocol.Hello, log *slog.Logger) {
	for _, f := range []struct {
		name    string
		v       *string
		keepEnd bool
	}{{"cwd", &h.Cwd, true}, {"host", &h.Host, false}, {"agent", &h.Agent, false}, {"label", &h.Label, false}} {
		v := strings.ReplaceAll(*f.v, "\x00", "")
		if len(v) > protocol.MaxMetaBytes {
			v = shorten(v, protocol.MaxMetaBytes, f.keepEnd)
		}
		if v != *f.v {
			log.Warn("hello field shortened to the relay's limit", "field", f.name, "bytes", len(*f.v), "limit", protocol.MaxMetaBytes, "sent", v)
			*f.v = v
		}
	}
}

// shorten cuts s to at most n bytes on a UTF-8 boundary with "…" where the
// cut was made, keeping its end (keepEnd) or its start.
func shorten(s string, n int, keepEnd bool) string {
	const mark = "…"
	n -= len(mark)
	if keepEnd {
		i := len(s) - n
		for i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		return mark + s[i:]
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "dial") {
		return s[i+2:]
	}
	return s
}

// classifyClose turns a read error into a stopError for "do not reconnect"
// close codes.
func (l *Link) classifyClose(err error) error {
	code := int(websocket.CloseStatus(err))
	if code < 0 {
		return err
	}
	reason := protocol.CloseReason(code)
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Reason != "" {
		reason = reason + ": " + ce.Reason
	}
	if !protocol.ShouldReconnect(code) {
		if code == protocol.CloseReplaced {
			return &stopError{"replaced: another relay-mcp connected with the id " + l.cfg.Hello.ClientID + " and took it over; this session stays offline so the two do not flap (restart it with a different id if both are needed)", code}
		}
		return &stopError{fmt.Sprintf("relay closed the connection (%d %s)", code, reason), code}
	}
	return fmt.Errorf("relay closed the connection (%d %s)", code, reason)
}

func readFrame(ctx context.Context, conn *websocket.Conn) (protocol.Frame, error) {
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageText {
			continue
		}
		f, err := relayLimits.Decode(data)
		if err != nil {
			return nil, &decodeError{err}
		}
		return f, nil
	}
}

type decodeError struct{ err error }

func (e *decodeError) Error() string { return "bad frame from relay: " + e.err.Error() }

func (l *Link) write(ctx context.Context, conn *websocket.Conn, f protocol.Frame) error {
	data, err := protocol.Encode(f)
	if err != nil {
		return err
	}
	// A write cut off by its context drops the connection (coder/websocket):
	// ctx ending lets a write in progress finish (within WriteTimeout), so
	// the goodbye that follows is a clean close.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.WriteTimeout)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, data)
}

// serve runs one welcomed connection: the read loop here, pings, acks and
// the outbox flush beside it, all ended together.
func (l *Link) serve(ctx context.Context, conn *websocket.Conn, w *protocol.Welcome) error {
	sctx, cancel := context.WithCancel(ctx)
	// The read loop reads with rctx, which outlives ctx: a read cut off by
	// its context drops the TCP connection, and the relay would log a lost
	// connection and tell everyone. When ctx ends, the goodbye below sends
	// a close frame and the read loop reads the relay's answer to it.
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			closeGently(conn, websocket.StatusNormalClosure, "session ended")
			rcancel()
		case <-served:
		}
	}()
	defer func() {
		close(served)
		cancel()
		l.mu.Lock()
		l.conn = nil
		for ref, ch := range l.pending {
			close(ch)
			delete(l.pending, ref)
		}
		l.mu.Unlock()
		if ctx.Err() == nil {
			conn.CloseNow() // also ends a ping waiting for its pong
		}
		wg.Wait() // when ctx ended, the goodbye is said by now
		conn.CloseNow()
		rcancel()
	}()

	l.mu.Lock()
	l.conn = conn
	l.connCtx = sctx
	l.server = w.Server
	if l.connected > 0 {
		l.reconnects++
	}
	l.connected++
	l.nextAttempt = time.Time{}
	clear(l.peers)
	for _, p := range w.Peers {
		l.peers[p.ID] = p
	}
	l.backlogLeft = w.Backlog
	l.caughtUp = make(chan struct{})
	if w.Backlog <= 0 {
		close(l.caughtUp)
	}
	l.setStateLocked(StateConnected, "")
	l.mu.Unlock()
	if w.Replaced != nil {
		l.log.Info("took over this id from an older connection", "host", w.Replaced.Host, "pid", w.Replaced.PID)
	}
	if held := l.cfg.Inbox.ResumeAfter(); held > w.LastSeq {
		// The relay never issued the seq held here: its store was reset.
		// Its backlog starts from 1 and arrives now; the resume point must
		// not stay above the new numbering, or a later resume would ack
		// (and skip) new mail.
		l.log.Warn("relay's mailbox was reset; resuming from its start", "held_seq", held, "relay_last_seq", w.LastSeq)
		if err := l.cfg.Inbox.ResetCursor(); err != nil {
			l.log.Error("could not reset the resume point", "err", err)
		}
	}
	l.log.Info("connected to relay", "url", l.URL(), "server", w.Server, "peers", len(w.Peers), "backlog", w.Backlog)

	wg.Add(3)
	go func() { defer wg.Done(); l.pingLoop(sctx, conn) }()
	go func() { defer wg.Done(); l.ackLoop(sctx, conn) }()
	go func() { defer wg.Done(); l.flushLoop(sctx) }()
	l.kick()

	// Provisional messages of this connection not yet confirmed; dropped
	// with it (the relay sends them again if they were committed).
	var unconfirmed []protocol.Message
	for {
		f, err := readFrame(rctx, conn)
		if err != nil {
			var de *decodeError
			if errors.As(err, &de) {
				l.log.Warn("ignoring a frame the relay sent", "err", de.err)
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return l.classifyClose(err)
		}
		switch m := f.(type) {
		case *protocol.Message:
			if m.Provisional {
				unconfirmed = append(unconfirmed, *m)
				continue
			}
			// Committed, and so is every seq before it (the relay acks
			// them first; this only guards the order).
			for len(unconfirmed) > 0 && unconfirmed[0].Seq < m.Seq {
				msg := unconfirmed[0]
				msg.Provisional = false
				unconfirmed = unconfirmed[1:]
				l.handle(&msg)
			}
		case *protocol.Ack:
			// The relay committed everything up to m.Upto: those are ours.
			n := 0
			for n < len(unconfirmed) && unconfirmed[n].Seq <= m.Upto {
				msg := unconfirmed[n]
				msg.Provisional = false
				l.handle(&msg)
				n++
			}
			unconfirmed = append(unconfirmed[:0], unconfirmed[n:]...)
			continue
		}
		l.handle(f)
	}
}

func closeGently(conn *websocket.Conn, code websocket.StatusCode, reason string) {
	done := make(chan struct{})
	go func() { conn.Close(code, reason); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		conn.CloseNow()
	}
}

func (l *Link) handle(f protocol.Frame) {
	switch f := f.(type) {
	case *protocol.Message:
		added, err := l.cfg.Inbox.Add(*f)
		l.countBacklog()
		if err != nil {
			l.log.Error("could not store a message; it stays unacked on the relay", "id", f.ID, "err", err)
			return
		}
		if f.Seq > 0 {
			select {
			case l.ackCh <- f.Seq:
			default:
				<-l.ackCh // drop the older pending value; the newer seq covers it
				select {
				case l.ackCh <- f.Seq:
				default:
				}
			}
		}
		if len(added) > 0 && l.cfg.OnMessages != nil {
			l.cfg.OnMessages(added)
		}
	case *protocol.Presence:
		l.mu.Lock()
		if f.Event != protocol.PresenceLeft { // joined, or a new status
			l.peers[f.Peer.ID] = f.Peer
		} else {
			delete(l.peers, f.Peer.ID)
		}
		l.mu.Unlock()
		if l.cfg.OnPresence != nil {
			l.cfg.OnPresence(*f)
		}
	case *protocol.Mail:
		if l.cfg.OnMail != nil {
			l.cfg.OnMail(*f)
		}
	default:
		ref := protocol.RefOf(f) // an answer to a request of ours
		if ref == "" {
			if ef, ok := f.(*protocol.ErrorFrame); ok {
				l.log.Warn("relay reported an error", "code", ef.Code, "message", ef.Message)
			}
			return
		}
		l.mu.Lock()
		ch := l.pending[ref]
		delete(l.pending, ref)
		l.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	}
}

// countBacklog counts one message of the welcome backlog as stored (or
// given up on), and marks the connection caught up after the last.
func (l *Link) countBacklog() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.backlogLeft > 0 {
		l.backlogLeft--
		if l.backlogLeft == 0 {
			close(l.caughtUp)
		}
	}
}

// CaughtUp returns a channel closed once the current connection's welcome
// backlog is in the inbox, or nil when the link is not connected.
func (l *Link) CaughtUp() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != StateConnected {
		return nil
	}
	return l.caughtUp
}

// FirstConnectWait is how long WaitFirstAttempt waits at most: a tool
// called in the first moments of a session waits for the connection under
// way instead of answering "offline".
const FirstConnectWait = 2 * time.Second

// WaitFirstAttempt waits while the link's first connection attempt is under
// way (StateConnecting), at most max: it returns once the link is
// connected, has failed its first attempt (then it is honestly offline), or
// max or ctx has run out.
func (l *Link) WaitFirstAttempt(ctx context.Context, max time.Duration) {
	t := time.NewTimer(max)
	defer t.Stop()
	for {
		l.mu.Lock()
		state, ch := l.state, l.stateCh
		l.mu.Unlock()
		if state != StateConnecting {
			return
		}
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// WaitCaughtUp waits until the link is connected and every message the relay
// held for it at hello (welcome.backlog) is in the inbox. It returns nil
// then, the context's error, or an error once the link has stopped.
func (l *Link) WaitCaughtUp(ctx context.Context) error {
	for {
		l.mu.Lock()
		state, stateCh, caught := l.state, l.stateCh, l.caughtUp
		reason := l.stopReason
		l.mu.Unlock()
		switch state {
		case StateStopped:
			return errors.New(reason)
		case StateClosed:
			return ErrOffline
		}
		var caughtCh <-chan struct{}
		if state == StateConnected {
			caughtCh = caught
		}
		select {
		case <-caughtCh:
			return nil
		case <-stateCh:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ackLoop acks the newest seq once the inbox is durable.
func (l *Link) ackLoop(ctx context.Context, conn *websocket.Conn) {
	for {
		select {
		case <-ctx.Done():
			return
		case seq := <-l.ackCh:
			if err := l.cfg.Inbox.Sync(); err != nil {
				l.log.Error("could not sync the inbox; not acking", "err", err)
				continue
			}
			if err := l.write(ctx, conn, &protocol.Ack{Upto: seq}); err != nil {
				return
			}
		}
	}
}

func (l *Link) pingLoop(ctx context.Context, conn *websocket.Conn) {
	measure := func() bool {
		// Not cut off by ctx: a ping write cut off by its context drops the
		// connection (coder/websocket), which would spoil the goodbye. The
		// wait for the pong ends when the goodbye closes the connection.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		start := time.Now()
		if err := conn.Ping(pctx); err != nil {
			if ctx.Err() == nil {
				l.log.Warn("relay did not answer a ping; reconnecting", "err", err)
				conn.CloseNow()
			}
			return false
		}
		l.mu.Lock()
		l.lastRTT = time.Since(start)
		l.mu.Unlock()
		return true
	}
	if !measure() {
		return
	}
	t := time.NewTicker(l.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !measure() {
				return
			}
		}
	}
}

// NewRef returns a fresh request ref (unique across processes and restarts).
func NewRef() string { return inbox.NewRef() }

// Request sends a request frame carrying ref and waits for the answer with
// the same ref. An error frame becomes a *RelayError.
func (l *Link) Request(ctx context.Context, ref string, f protocol.Frame) (protocol.Frame, error) {
	l.mu.Lock()
	conn, cctx := l.conn, l.connCtx
	if conn == nil {
		l.mu.Unlock()
		return nil, ErrOffline
	}
	ch := make(chan protocol.Frame, 1)
	l.pending[ref] = ch
	l.mu.Unlock()
	if err := l.write(ctx, conn, f); err != nil {
		l.mu.Lock()
		delete(l.pending, ref)
		l.mu.Unlock()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, ErrOffline
	}
	select {
	case ans, ok := <-ch:
		if !ok {
			return nil, ErrDisconnected
		}
		if ef, isErr := ans.(*protocol.ErrorFrame); isErr {
			return nil, &RelayError{ef}
		}
		return ans, nil
	case <-cctx.Done():
		return nil, ErrDisconnected
	case <-ctx.Done():
		l.mu.Lock()
		delete(l.pending, ref)
		l.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Peers asks the relay who is online.
func (l *Link) RequestPeers(ctx context.Context) ([]protocol.Peer, error) {
	ref := NewRef()
	ans, err := l.Request(ctx, ref, &protocol.Peers{Ref: ref})
	if err != nil {
		return nil, err
	}
	p, ok := ans.(*protocol.Peers)
	if !ok {
		return nil, fmt.Errorf("relay answered peers with %s", ans.Type())
	}
	return p.Peers, nil
}

// Sessions asks the relay for every session it knows.
func (l *Link) Sessions(ctx context.Context) ([]protocol.Session, error) {
	ref := NewRef()
	ans, err := l.Request(ctx, ref, &protocol.Sessions{Ref: ref})
	if err != nil {
		return nil, err
	}
	s, ok := ans.(*protocol.Sessions)
	if !ok {
		return nil, fmt.Errorf("relay answered sessions with %s", ans.Type())
	}
	return s.Sessions, nil
}

// Clear asks the relay to forget this client's read history.
func (l *Link) Clear(ctx context.Context, includeUnread bool) (int, error) {
	ref := NewRef()
	ans, err := l.Request(ctx, ref, &protocol.Clear{Ref: ref, IncludeUnread: includeUnread})
	if err != nil {
		return 0, err
	}
	c, ok := ans.(*protocol.Cleared)
	if !ok {
		return 0, fmt.Errorf("relay answered clear with %s", ans.Type())
	}
	return c.Cleared, nil
}

// History asks the relay for a page of past messages.
func (l *Link) History(ctx context.Context, q protocol.History) (*protocol.History, error) {
	q.Ref = NewRef()
	q.Messages, q.More = nil, false
	ans, err := l.Request(ctx, q.Ref, &q)
	if err != nil {
		return nil, err
	}
	h, ok := ans.(*protocol.History)
	if !ok {
		return nil, fmt.Errorf("relay answered history with %s", ans.Type())
	}
	return h, nil
}
