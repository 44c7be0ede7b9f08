// Package server is relayd's HTTP face: the v1 WebSocket endpoint, the older
// Node relay's protocol on /, /healthz and the dashboard. Each WebSocket gets
// one reader (the handler goroutine), one writer and one keepalive
// goroutine; they stop together.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

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
	// AppendEncode appends one relay frame to dst as this transport
	// renders it; ok false means it has no form for it and it is skipped
	// (dst is returned as it was, as on an error). The writer reuses dst
	// for every frame it writes.
	AppendEncode(dst []byte, f protocol.Frame, self string) (b []byte, ok bool, err error)
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
func (v1Codec) AppendEncode(dst []byte, f protocol.Frame, _ string) ([]byte, bool, error) {
	b, err := protocol.AppendEncode(dst, f)
	return b, err == nil, err
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
