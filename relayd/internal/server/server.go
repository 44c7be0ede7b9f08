// Package server is relayd's HTTP face: the v1 WebSocket endpoint, the older
// Node relay's protocol on /, /healthz and the dashboard. Each WebSocket gets
// one reader (the handler goroutine), one writer and one keepalive
// goroutine; they stop together.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/auth"
	"github.com/claude-relay/claude-relay/relayd/internal/console"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/metrics"
	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
)

// Server serves relayd's HTTP endpoints. Set the fields, then use Handler.
type Server struct {
	// Hub routes messages. Required.
	Hub *hub.Hub
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Version is reported by /healthz. Defaults to "dev".
	Version string
	// Limits bound incoming frames. Zero fields take protocol defaults.
	Limits protocol.Limits
	// HelloTimeout is how long a new connection may take to say hello.
	// Defaults to 10 s.
	HelloTimeout time.Duration
	// PingInterval is the keepalive period; a client silent for two
	// intervals is dropped. Defaults to 15 s.
	PingInterval time.Duration
	// WriteTimeout bounds each write to a client; a client that cannot take
	// a frame in that time is closed as a slow consumer. Defaults to 10 s.
	WriteTimeout time.Duration
	// CloseGrace is how long a client may take to answer the relay's close
	// frame before the socket is dropped. Defaults to 2 s.
	CloseGrace time.Duration
	// AllowOrigins lists extra browser Origin host patterns allowed to open
	// a WebSocket (see websocket.AcceptOptions.OriginPatterns). Requests
	// from any other foreign Origin are refused with 403.
	AllowOrigins []string
	// AllowHosts lists host name patterns (path.Match, no port) a relay
	// without a token answers to besides loopback names and IP addresses;
	// other Host headers are refused with 403 (DNS rebinding, host.go).
	AllowHosts []string
	// Legacy makes a codec for one connection of the older Node relay's
	// protocol; WebSocket upgrades on / use it. Nil refuses them.
	Legacy func() Codec
	// Token, when set, must be presented by every WebSocket client:
	// "Authorization: Bearer TOKEN", or ?token=TOKEN on / for older clients
	// that cannot set headers.
	Token string
	// Tokens, when set, are per-identity tokens (a tokens file): each may
	// claim only the client ids its line lists. Token, if also set, may
	// claim any id.
	Tokens *auth.Tokens
	// MaxConns caps the open WebSocket connections; past it upgrades are
	// refused with 503. 0 means no cap.
	MaxConns int
	// MaxConnsPerAddr caps the open WebSocket connections from one remote
	// IP address; past it upgrades are refused with 429. 0 means no cap.
	MaxConnsPerAddr int
	// IdleTimeout closes a client that sent no application frame for this
	// long (pongs do not count: a live but stuck client answers pings).
	// 0 means never.
	IdleTimeout time.Duration
	// Metrics is the registry GET /metrics serves. Nil makes one for this
	// server (without store latency, which needs the store wrapped by
	// Metrics.Store).
	Metrics *metrics.Metrics
	// AuthFailLimit bounds requests with a missing or wrong token per
	// remote IP address; past it the address gets 429 until its bucket
	// refills, whatever token it sends. The zero Rate means no limit.
	AuthFailLimit ratelimit.Rate

	gate      gate
	console   *console.Console // the operator's console at /console
	authFails *ratelimit.Buckets
	counters  counters
	metrics   http.Handler
	initOnce  sync.Once
	started   time.Time
	conns     sync.WaitGroup

	liveMu   sync.Mutex
	live     map[*hub.Conn]*liveConn // for the pinger
	stopPing chan struct{}
	pinging  sync.WaitGroup // the pinger and its pings
}

// Codec turns one connection's frames into protocol frames and back. The v1
// endpoint's codec is protocol's JSON itself; the older protocol has its own.
type Codec interface {
	// Decode reads one client frame; what it returns must not refer to
	// data, whose buffer is reused. A *protocol.Error is answered with an
	// error frame and the connection stays up.
	Decode(data []byte) (protocol.Frame, error)
	// Encode renders one relay frame; ok false means this transport has no
	// form for it and it is skipped.
	Encode(f protocol.Frame, self string) (b []byte, ok bool, err error)
	// AutoAck is true for clients that cannot ack: a message written to the
	// socket counts as held.
	AutoAck() bool
	// Name is the transport's name in logs.
	Name() string
}

// LocalReply is a frame a codec's Decode returns as the answer to a frame
// its transport answers by itself, without the hub: the older protocol's
// ping gets a pong. The connection queues it with its other replies (before
// hello, it writes it at once).
type LocalReply interface {
	protocol.Frame
	LocalReply()
}

// v1Codec is protocol v1 on /v1/ws.
type v1Codec struct{ limits protocol.Limits }

func (c v1Codec) Decode(b []byte) (protocol.Frame, error) { return c.limits.Decode(b) }
func (v1Codec) Encode(f protocol.Frame, _ string) ([]byte, bool, error) {
	b, err := protocol.Encode(f)
	return b, true, err
}
func (v1Codec) AutoAck() bool { return false }
func (v1Codec) Name() string  { return "v1" }

func (s *Server) init() {
	s.initOnce.Do(func() {
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		if s.Version == "" {
			s.Version = "dev"
		}
		if s.HelloTimeout <= 0 {
			s.HelloTimeout = 10 * time.Second
		}
		if s.PingInterval <= 0 {
			s.PingInterval = 15 * time.Second
		}
		if s.CloseGrace <= 0 {
			s.CloseGrace = 2 * time.Second
		}
		if s.WriteTimeout <= 0 {
			s.WriteTimeout = 10 * time.Second
		}
		s.Limits = protocol.Limits{MaxFrameBytes: s.Limits.MaxFrameBytes, MaxBodyBytes: s.Limits.MaxBodyBytes}
		if s.Limits.MaxBodyBytes <= 0 {
			s.Limits.MaxBodyBytes = protocol.DefaultMaxBodyBytes
		}
		if s.Limits.MaxFrameBytes <= 0 {
			// Room for a body that needs JSON escaping, plus the other fields.
			s.Limits.MaxFrameBytes = max(protocol.DefaultMaxFrameBytes, 2*s.Limits.MaxBodyBytes+64<<10)
		}
		s.authFails = ratelimit.New(s.AuthFailLimit)
		s.started = time.Now()
		s.metrics = s.metricsHandler()
		s.console = &console.Console{Hub: s.Hub, Logger: s.Logger, Token: s.Token, Tokens: s.Tokens,
			AuthFails: s.authFails, Limits: s.Limits}
	})
}

// Handler returns the HTTP handler for every endpoint.
func (s *Server) Handler() http.Handler {
	s.init()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ws", func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.authenticate(w, r, false)
		if !ok {
			return
		}
		s.serveWS(w, withIdentity(r, id), v1Codec{limits: s.Limits})
	})
	mux.HandleFunc("GET /healthz", s.serveHealth)
	cons := s.console.Handler()
	mux.Handle(console.Path, cons)
	mux.Handle(console.Path+"/", cons)
	mux.Handle("GET /metrics", s.metrics)
	mux.HandleFunc("GET /dashboard.json", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.authenticate(w, r, true); !ok {
			return
		}
		s.serveDashboardJSON(w, r)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if isUpgrade(r) {
			id, ok := s.authenticate(w, r, true)
			if !ok {
				return
			}
			if s.Legacy == nil {
				http.Error(w, "the older relay protocol is not enabled here; connect to /v1/ws", http.StatusNotFound)
				return
			}
			s.serveWS(w, withIdentity(r, id), s.Legacy())
			return
		}
		s.serveDashboard(w, r)
	})
	return s.checkHost(mux)
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// Shutdown closes every client with 1001 (going away: reconnect later) and
// waits for their handlers to finish, or for ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.console.Close() // its event streams would hold up an HTTP server's shutdown
	s.Hub.Close(protocol.CloseGoingAway, protocol.CloseReason(protocol.CloseGoingAway))
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		s.liveMu.Lock()
		if s.stopPing != nil {
			close(s.stopPing)
			s.stopPing = nil
			s.live = nil
		}
		s.liveMu.Unlock()
		s.pinging.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for connections to close: %w", ctx.Err())
	}
}

type health struct {
	Status   string  `json:"status"`
	Version  string  `json:"version"`
	Proto    int     `json:"proto"`
	UptimeS  float64 `json:"uptime_s"`
	Online   int     `json:"peers_online"`
	Sent     int64   `json:"messages_sent"`
	Queued   int64   `json:"messages_queued"`
	Unknown  int64   `json:"recipients_unknown"`
	StoreErr int64   `json:"store_errors"`
}

func (s *Server) healthNow() health {
	st := s.Hub.Stats()
	status := "ok"
	if st.StoreFailing.Load() {
		status = "degraded" // the last store write failed: sends are refused
	}
	return health{
		Status: status, Version: s.Version, Proto: protocol.Version,
		UptimeS: time.Since(s.started).Round(time.Millisecond).Seconds(),
		Online:  s.Hub.Online(), Sent: st.Sent.Load(), Queued: st.Queued.Load(),
		Unknown: st.Unknown.Load(), StoreErr: st.StoreErrors.Load(),
	}
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	h := s.healthNow()
	if h.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(h)
}

// serveWS runs one WebSocket connection from upgrade to close.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, codec Codec) {
	sl, ok := s.admit(w, r)
	if !ok {
		return
	}
	defer sl.Release()
	s.conns.Add(1)
	defer s.conns.Done()
	bw := &batchingWriter{ResponseWriter: w}
	ws, err := websocket.Accept(bw, r, &websocket.AcceptOptions{OriginPatterns: s.AllowOrigins})
	if err != nil {
		// Accept has answered already (403 for a foreign Origin, 426 …).
		s.Logger.Info("websocket upgrade refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	ws.SetReadLimit(int64(s.Limits.MaxFrameBytes))
	s.counters.sockets.Add(1)
	defer s.counters.sockets.Add(-1)
	log := s.Logger.With("remote", r.RemoteAddr, "transport", codec.Name())

	// The connection's lifetime is ctx, not the request's: a cancelled read
	// makes the websocket library drop the socket without a close frame, so
	// every close with a code goes through ws.Close instead.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	defer ws.CloseNow()

	// hctx ends only when a newer connection takes this one's slot before
	// its hello (gate.go). It must not be cancelled otherwise: the
	// websocket library closes the socket when the context of its last
	// read ends, even after the read returned.
	hctx, hcancel := context.WithCancel(ctx)
	sl.OnEvict(hcancel, bw.conn.heard.Load)
	hello, err := s.readHello(hctx, ws, codec, log)
	if err != nil {
		log.Debug("no session", "err", err)
		return
	}
	if !sl.Hello() {
		log.Debug("no session: a newer connection took its slot before its hello")
		return
	}
	if !s.mayClaim(ctx, ws, codec, r, hello, log) {
		return
	}
	conn, welcome, err := s.Hub.Join(ctx, hello, codec.AutoAck())
	if errors.Is(err, hub.ErrIDInUse) {
		s.write(ctx, ws, codec, &protocol.ErrorFrame{Code: protocol.CodeIDInUse, Message: err.Error()}, "")
		ws.Close(protocol.CloseIDInUse, protocol.CloseReason(protocol.CloseIDInUse))
		return
	}
	if err != nil {
		ws.Close(protocol.CloseGoingAway, err.Error())
		return
	}
	if id, ok := r.Context().Value(identityKey{}).(auth.Identity); ok {
		conn.SetClaims(id.May) // who may be watched (hub/status_watch.go)
	}
	log = log.With("client", conn.ID())
	reason := "closed by client"
	defer func() { s.Hub.Leave(conn, reason) }()

	if err := s.write(ctx, ws, codec, welcome, conn.ID()); err != nil {
		reason = "write failed"
		return
	}

	// Two goroutines a connection: the reader is this one, the writer is
	// started and cancelled with it. Pings come from one pinger for all.
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop(ctx, ws, bw.conn, codec, conn, log)
		s.closeKicked(ctx, cancel, ws, bw.conn, conn)
	}()
	lc := s.track(conn, ws)
	defer s.untrack(conn)
	reason = s.readLoop(ctx, ws, codec, conn, lc, log)
	if code, why := conn.CloseStatus(); code != 0 {
		reason = why
	}
	cancel()
	<-writerDone
}

// closeKicked runs when the writer stops. If the hub closed the connection
// (replaced, slow, idle, shutdown), others hear that it left at once and the
// client gets the close code; the handshake gets CloseGrace, since a slow or
// silent client may never answer it, then the socket is dropped, which ends
// the read loop.
func (s *Server) closeKicked(ctx context.Context, cancel context.CancelFunc, ws *websocket.Conn, sock net.Conn, conn *hub.Conn) {
	select {
	case <-conn.Done():
	default:
		return // the reader ended first: the handler closes
	}
	if ctx.Err() != nil {
		return
	}
	code, why := conn.CloseStatus()
	s.Hub.Leave(conn, why)
	// Past the grace the socket itself is closed: when the read loop has
	// already returned, cancelling ctx ends nothing, and ws.Close waits up
	// to its own 5 s for a close frame from a client that is not reading
	// (CloseNow cannot cut a Close short) — that held up Shutdown.
	grace := time.AfterFunc(s.CloseGrace, func() {
		cancel()
		sock.Close()
	})
	defer grace.Stop()
	ws.Close(websocket.StatusCode(code), truncateReason(why))
	cancel()
}

// readHello reads frames until a valid hello arrives. Frames before hello
// are answered with an error and otherwise ignored; after HelloTimeout the
// connection is closed with CloseHelloTimeout.
func (s *Server) readHello(ctx context.Context, ws *websocket.Conn, codec Codec, log *slog.Logger) (*protocol.Hello, error) {
	timer := time.AfterFunc(s.HelloTimeout, func() {
		ws.Close(protocol.CloseHelloTimeout, fmt.Sprintf("no hello within %s", s.HelloTimeout))
	})
	defer timer.Stop()
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageText {
			s.write(ctx, ws, codec, binaryError(), "")
			continue
		}
		f, err := codec.Decode(data)
		if err != nil {
			perr := asProtoError(err)
			s.write(ctx, ws, codec, perr.Frame(), "")
			continue
		}
		if r, ok := f.(LocalReply); ok {
			s.write(ctx, ws, codec, r, "")
			continue
		}
		hello, ok := f.(*protocol.Hello)
		if !ok {
			s.write(ctx, ws, codec, &protocol.ErrorFrame{Ref: protocol.RefOf(f), Code: protocol.CodeHelloRequired,
				Message: "the first frame must be hello {\"type\":\"hello\",\"proto\":1,\"client_id\":\"…\"}; got " + f.Type()}, "")
			continue
		}
		if hello.Proto != protocol.Version {
			msg := fmt.Sprintf("this relay speaks protocol %d; the client asked for %d — upgrade the older side", protocol.Version, hello.Proto)
			s.write(ctx, ws, codec, &protocol.ErrorFrame{Code: protocol.CodeUnsupportedProto, Message: msg}, "")
			ws.Close(protocol.CloseBadHello, truncateReason(msg))
			return nil, errors.New(msg)
		}
		if !timer.Stop() {
			return nil, errors.New("hello arrived after the deadline")
		}
		log.Debug("hello", "client", hello.ClientID)
		return hello, nil
	}
}

// readLoop reads frames until the connection ends and returns why it ended.
func (s *Server) readLoop(ctx context.Context, ws *websocket.Conn, codec Codec, conn *hub.Conn, lc *liveConn, log *slog.Logger) string {
	for {
		typ, data, buf, err := readFrame(ctx, ws)
		if err != nil {
			releaseFrame(buf)
			switch st := websocket.CloseStatus(err); {
			case st == websocket.StatusNormalClosure || st == websocket.StatusGoingAway || st == websocket.StatusNoStatusRcvd: // 1005: a close frame without a code, as browsers send
				return "closed by client"
			case st == websocket.StatusMessageTooBig:
				return "frame too large"
			case st != -1:
				return fmt.Sprintf("client closed with %d", st)
			case ctx.Err() != nil:
				return "closed by relay"
			}
			if strings.Contains(err.Error(), "read limited") {
				return "frame too large"
			}
			log.Debug("read failed", "err", err)
			return "connection lost"
		}
		if typ != websocket.MessageText {
			releaseFrame(buf)
			conn.Push(binaryError())
			continue
		}
		lc.lastFrame.Store(time.Now().UnixNano())
		f, err := codec.Decode(data)
		releaseFrame(buf) // decoders copy what they keep
		if err != nil {
			conn.Push(asProtoError(err).Frame())
			continue
		}
		if r, ok := f.(LocalReply); ok {
			conn.Push(r)
			continue
		}
		conn.Handle(ctx, f)
	}
}

// writeLoop writes what the hub hands the connection until ctx ends or the
// hub closes it.
// Each burst that Next hands over is written with one flush.
func (s *Server) writeLoop(ctx context.Context, ws *websocket.Conn, bc *batchConn, codec Codec, conn *hub.Conn, log *slog.Logger) {
	var buf []protocol.Frame
	for {
		frames, err := conn.Next(ctx, buf)
		if err != nil || frames == nil {
			return
		}
		var lastSeq uint64
		bc.begin()
		for _, f := range frames {
			err = s.write(ctx, ws, codec, f, conn.ID())
			if err != nil {
				break
			}
			if m, ok := f.(*protocol.Message); ok {
				lastSeq = m.Seq
				s.counters.messagesOut.Add(1)
			}
		}
		if ferr := bc.flush(s.WriteTimeout); err == nil {
			err = ferr
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Info("write failed; closing as slow consumer", "err", err)
				conn.Kick(protocol.CloseSlowConsumer, protocol.CloseReason(protocol.CloseSlowConsumer))
			}
			return
		}
		if lastSeq > 0 && codec.AutoAck() {
			conn.Handle(ctx, &protocol.Ack{Upto: lastSeq})
		}
		buf = frames
	}
}

// liveConn is what the pinger knows of a connection.
type liveConn struct {
	ws *websocket.Conn
	// lastFrame is when the client last sent a frame of its own (unix
	// nanoseconds), for IdleTimeout. Pongs do not count: a client stuck
	// in a loop still answers pings.
	lastFrame atomic.Int64
}

// track registers a live connection with the pinger.
func (s *Server) track(conn *hub.Conn, ws *websocket.Conn) *liveConn {
	lc := &liveConn{ws: ws}
	lc.lastFrame.Store(time.Now().UnixNano())
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if s.live == nil {
		s.live = map[*hub.Conn]*liveConn{}
		s.stopPing = make(chan struct{})
		s.pinging.Add(1)
		go s.pingLoop(s.stopPing)
	}
	s.live[conn] = lc
	return lc
}

func (s *Server) untrack(conn *hub.Conn) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	delete(s.live, conn)
}

// pingLoop is the keepalive of every connection: each PingInterval it drops
// clients silent for two intervals, closes those idle past IdleTimeout, and
// pings the rest. Each ping runs in a
// goroutine that ends with the pong; they are started in batches spread over
// half the interval, so ten thousand idle connections never hold ten
// thousand ping goroutines (and their stacks) at once.
func (s *Server) pingLoop(stop <-chan struct{}) {
	defer s.pinging.Done()
	const batch = 256
	t := time.NewTicker(s.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.liveMu.Lock()
		type pair struct {
			conn *hub.Conn
			ws   *websocket.Conn
		}
		due := make([]pair, 0, len(s.live))
		now := time.Now()
		for conn, lc := range s.live {
			if now.Sub(conn.LastSeen()) >= 2*s.PingInterval {
				conn.Kick(protocol.CloseIdle, fmt.Sprintf("no answer to pings for %s", 2*s.PingInterval))
				continue
			}
			if s.IdleTimeout > 0 && now.Sub(time.Unix(0, lc.lastFrame.Load())) >= s.IdleTimeout {
				conn.Kick(protocol.CloseIdle, fmt.Sprintf("idle: no frame for %s (the relay's --idle-timeout)", s.IdleTimeout))
				continue
			}
			due = append(due, pair{conn, lc.ws})
		}
		s.liveMu.Unlock()
		gap := s.PingInterval / 2 / time.Duration(len(due)/batch+1)
		for i, p := range due {
			if i > 0 && i%batch == 0 {
				select {
				case <-stop:
					return
				case <-time.After(gap):
				}
			}
			s.pinging.Add(1)
			go func() {
				defer s.pinging.Done()
				ctx, cancel := context.WithTimeout(context.Background(), s.PingInterval)
				defer cancel()
				if p.ws.Ping(ctx) == nil {
					p.conn.Touch()
				}
			}()
		}
	}
}

func (s *Server) write(ctx context.Context, ws *websocket.Conn, codec Codec, f protocol.Frame, self string) error {
	b, ok, err := codec.Encode(f, self)
	if err != nil {
		s.Logger.Error("encoding frame failed", "type", f.Type(), "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.WriteTimeout)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, b)
}

func binaryError() *protocol.ErrorFrame {
	return &protocol.ErrorFrame{Code: protocol.CodeBadJSON, Message: "binary WebSocket messages are not accepted; send each frame as a JSON text message"}
}

func asProtoError(err error) *protocol.Error {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return perr
	}
	return &protocol.Error{Code: protocol.CodeBadJSON, Message: err.Error()}
}

// truncateReason keeps a close reason within the 123 bytes a close frame
// allows.
func truncateReason(s string) string {
	if len(s) <= 120 {
		return s
	}
	return s[:117] + "..."
}
