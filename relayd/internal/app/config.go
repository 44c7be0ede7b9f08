package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/auth"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/legacy"
	"github.com/claude-relay/claude-relay/relayd/internal/metrics"
	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
	"github.com/claude-relay/claude-relay/relayd/internal/server"
)

// Config is everything relayd serves with, resolved: files read, rates
// parsed, --port applied. The flags and their environment variables fill
// one (configFrom); tests build one with DefaultConfig and call Run, as
// main does through Main.
type Config struct {
	Listen string      // host:port; "127.0.0.1:0" takes any free port
	TLS    *tls.Config // serve wss:// and https://; nil for ws:// and http://

	Token        string       // the shared token, which may claim any id; "" for none
	Tokens       *auth.Tokens // per-identity tokens; nil for none
	Insecure     bool         // listen beyond loopback without a token
	AllowOrigins []string     // browser Origin host patterns allowed a WebSocket
	AllowHosts   []string     // host names a relay without a token answers to

	Store      string        // "sqlite" (durable, in DataDir) or "memory"
	DataDir    string        // the SQLite store's folder; "" is $RELAY_HOME/data
	Retention  time.Duration // how long a message is kept; 0 keeps everything
	MaxQueue   int           // most unread messages kept for one recipient
	MaxStoreMB int           // most MiB of data the SQLite store holds; 0 no limit

	Limits          hub.Limits     // per client, per pair (and its loop warning), whole relay
	AuthFail        ratelimit.Rate // wrong tokens per remote address
	MaxConns        int            // open connections; 0 no limit
	MaxConnsPerAddr int            // open connections from one address; 0 no limit
	IdleTimeout     time.Duration  // close a client silent this long; 0 never
	MaxBody         int            // largest message body in bytes
	PingInterval    time.Duration  // keepalive period
	HelloTimeout    time.Duration  // how long a new connection may take to say hello

	LogLevel  string // debug, info, warn or error
	LogFormat string // text or json

	// Ready, when set, is called with the address relayd listens on once
	// it accepts connections.
	Ready func(addr string)
}

// DefaultConfig is relayd's Config with no flags and no environment (its
// values are the flags' defaults).
func DefaultConfig() Config {
	must := func(s string) ratelimit.Rate {
		r, err := ratelimit.ParseRate(s)
		if err != nil {
			panic(err)
		}
		return r
	}
	return Config{
		Listen: defaultListen, Store: "sqlite", Retention: 7 * 24 * time.Hour, MaxQueue: 10000, MaxStoreMB: defaultMaxStoreMB,
		Limits:   hub.Limits{Client: must(defaultClientLimit), Pair: must(defaultPairLimit), Loop: must(defaultLoopWarn), Global: must(defaultGlobalLimit), NewIDs: must(defaultNewIDLimit)},
		AuthFail: must(defaultAuthFail), MaxConns: defaultMaxConns, MaxConnsPerAddr: defaultMaxPerAddr,
		MaxBody: protocol.DefaultMaxBodyBytes, PingInterval: 15 * time.Second, HelloTimeout: 10 * time.Second,
		LogLevel: "info", LogFormat: "text",
	}
}

// ConfigFromArgs is the Config `relayd ARGS...` serves: the serve flags
// in args (without the program name) and their environment variables,
// resolved as Main resolves them. Package relaytest starts relays this way.
func ConfigFromArgs(args []string) (Config, error) {
	a := New(io.Discard, io.Discard)
	var cfg Config
	var err error
	a.Action = func(c *cli.Context) error { cfg, err = configFrom(c); return err }
	if rerr := a.Run(append([]string{"relayd"}, args...)); rerr != nil {
		return Config{}, rerr
	}
	return cfg, err
}

// configFrom fills a Config from the serve flags (each also read from its
// environment variable). Errors are usage errors (exit 2) naming the fix.
func configFrom(c *cli.Context) (Config, error) {
	usage := func(err error) (Config, error) { return Config{}, cli.Exit(err.Error(), 2) }
	if c.Args().Len() > 0 {
		return usage(fmt.Errorf("unknown command %q; run relayd --help", c.Args().First()))
	}
	cfg := Config{
		Store: c.String("store"), DataDir: c.String("data-dir"), Retention: c.Duration("retention"), MaxQueue: c.Int("max-queue"), MaxStoreMB: c.Int("max-store-mb"),
		Insecure: c.Bool("insecure"), AllowOrigins: c.StringSlice("allow-origin"),
		MaxConns: c.Int("max-conns"), MaxConnsPerAddr: c.Int("max-conns-per-addr"), IdleTimeout: c.Duration("idle-timeout"),
		MaxBody: c.Int("max-body"), PingInterval: c.Duration("ping-interval"), HelloTimeout: c.Duration("hello-timeout"),
		LogLevel: c.String("log-level"), LogFormat: c.String("log-format"),
	}
	var err error
	if cfg.Listen, err = listenAddr(c.String("listen"), c.Int("port")); err != nil {
		return usage(err)
	}
	if cfg.Token, err = readToken(c); err != nil {
		return usage(err)
	}
	if p := c.String("tokens-file"); p != "" {
		if cfg.Tokens, err = auth.LoadTokens(p); err != nil {
			return usage(err)
		}
	}
	for _, l := range []struct {
		flag string
		to   *ratelimit.Rate
	}{{"client-limit", &cfg.Limits.Client}, {"pair-limit", &cfg.Limits.Pair}, {"loop-warn", &cfg.Limits.Loop}, {"global-limit", &cfg.Limits.Global}, {"new-id-limit", &cfg.Limits.NewIDs}, {"auth-fail-limit", &cfg.AuthFail}} {
		if *l.to, err = ratelimit.ParseRate(c.String(l.flag)); err != nil {
			return usage(fmt.Errorf("--%s: %v", l.flag, err))
		}
	}
	for _, h := range c.StringSlice("allow-host") {
		if _, perr := path.Match(h, ""); perr != nil || h == "" || strings.ContainsAny(h, ":/") {
			return usage(fmt.Errorf("--allow-host %q: give a host name or pattern without scheme or port, e.g. relay.example.com or *.lan", h))
		}
		cfg.AllowHosts = append(cfg.AllowHosts, h)
	}
	if cfg.TLS, err = loadTLS(c.String("tls-cert"), c.String("tls-key")); err != nil {
		return usage(err)
	}
	return cfg, nil
}

// Run serves cfg until ctx ends, then shuts down gracefully: clients are
// closed with 1001 (reconnect later). Errors are cli exits: 2 for a Config
// that must not run, 1 for what failed at start.
func Run(ctx context.Context, cfg Config, stderr io.Writer) error {
	log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if err := checkExposure(cfg, log); err != nil { // refuses an open listener
		return err
	}

	st, where, err := openStore(ctx, cfg.Store, cfg.DataDir, log)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	defer st.Close()
	reg := metrics.New() // GET /metrics; times the store's appends
	st = reg.Store(st)
	stopRetention := startRetention(ctx, st, cfg.Retention, log)
	defer stopRetention() // runs before st.Close: no sweep on a closed store

	storeFull, stopSize := watchStoreSize(ctx, st, cfg.MaxStoreMB, log)
	defer stopSize()
	h := hub.New(hub.Options{
		Store: st, Logger: log, Server: "relayd " + version(), MaxQueue: cfg.MaxQueue, StoreFull: storeFull,
		HeartbeatMS: cfg.PingInterval.Milliseconds(),
		Limits:      cfg.Limits,
	})
	srv := &server.Server{
		Hub: h, Logger: log, Version: version(), Metrics: reg,
		Limits:       protocol.Limits{MaxBodyBytes: cfg.MaxBody},
		HelloTimeout: cfg.HelloTimeout, PingInterval: cfg.PingInterval,
		AllowOrigins: cfg.AllowOrigins,
		Token:        cfg.Token, Tokens: cfg.Tokens,
		MaxConns: cfg.MaxConns, MaxConnsPerAddr: cfg.MaxConnsPerAddr, IdleTimeout: cfg.IdleTimeout,
		Legacy: func() server.Codec {
			return legacy.New(protocol.Limits{MaxBodyBytes: cfg.MaxBody})
		},
	}
	srv.AllowHosts = cfg.AllowHosts // DNS rebinding guard (server/host.go)
	srv.AuthFailLimit = cfg.AuthFail

	addr := cfg.Listen
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return cli.Exit(fmt.Sprintf("cannot listen on %s: the port is taken — is another relayd running? (curl %s/healthz) Use --port to pick another", addr, "http://"+addr), 1)
		}
		return cli.Exit(fmt.Sprintf("cannot listen on %s: %v", addr, err), 1)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("relayd listening", "addr", ln.Addr().String(), "version", version(), "store", cfg.Store, "data", where,
		"auth", cfg.Token != "" || cfg.Tokens != nil, "scheme", cfg.scheme())
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}

	select {
	case err := <-served:
		return cli.Exit(fmt.Sprintf("serving on %s: %v", addr, err), 1)
	case <-ctx.Done():
	}
	log.Info("shutting down: closing connections (1001, reconnect later)")
	sctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	hs.Shutdown(sctx) // stops accepting; hijacked WebSockets are closed below
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("some connections did not close in time", "err", err)
	}
	log.Info("relayd stopped")
	return nil
}

// scheme is the URL scheme clients use.
func (cfg Config) scheme() string {
	if cfg.TLS != nil {
		return "wss"
	}
	return "ws"
}

// checkExposure refuses to listen beyond loopback without a credential
// unless Insecure, and warns of the weaker setups it allows.
func checkExposure(cfg Config, log *slog.Logger) error {
	if cfg.MaxConns < 0 || cfg.MaxConnsPerAddr < 0 || cfg.IdleTimeout < 0 {
		return cli.Exit("--max-conns, --max-conns-per-addr and --idle-timeout take 0 (no limit) or a positive value", 2)
	}
	addr := cfg.Listen
	if isLoopback(addr) {
		return nil
	}
	authed := cfg.Token != "" || cfg.Tokens != nil
	switch {
	case !authed && !cfg.Insecure:
		return cli.Exit(fmt.Sprintf("refusing to listen on %s without a token: anyone who reaches it could send text into your agents.\n"+
			"Set RELAY_TOKEN or --token-file FILE (clients send it too) or --tokens-file FILE (per-identity tokens), "+
			"keep --listen on 127.0.0.1 and use an SSH tunnel, or pass --insecure to accept the risk", addr), 2)
	case !authed:
		log.Warn("listening beyond loopback WITHOUT a token (--insecure): anyone who reaches this port can message your agents", "addr", addr)
	case cfg.TLS == nil:
		log.Warn("listening beyond loopback without TLS: tokens and messages cross the network in clear text; add --tls-cert/--tls-key or use an SSH tunnel", "addr", addr)
	}
	// --auth-fail-limit slows guessing down; a long random token is what
	// makes it hopeless.
	if n := len(cfg.Token); n > 0 && n < minTokenLen {
		log.Warn(fmt.Sprintf("the shared token is only %d characters: someone who can reach the port could guess it; use %d or more random characters (relayd token new prints one)", n, minTokenLen), "addr", addr)
	}
	return nil
}
