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
	"sync"
	"time"

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
	// Notices are what the relay says stands for this client (the
	// operator held a pair it is in, …), by subject; this connection's.
	Notices []string
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
	notices     map[string]string // the relay's standing notices by subject (protocol.Notice)
	pending     map[string]chan protocol.Frame
	waiters     map[string]chan SendResult // outbox refs awaited by a tool call
	stateCh     chan struct{}              // closed at each state change
	kickFlush   chan struct{}
	ackCh       chan uint64
	rename      *renameReq // asked for by Rename, applied between connections (rename.go)
	reads       reads      // read reports made on the current connection (reads.go)
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
		notices:   map[string]string{},
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
