package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/claude-relay/claude-relay/internal/buildinfo"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/cluster"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/legacy"
	"github.com/claude-relay/claude-relay/relayd/internal/metrics"
	"github.com/claude-relay/claude-relay/relayd/internal/server"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// ConfigError is a Config that must not run (exposed without a token, a bad
// log level, a negative limit): relayd exits 2 for it, 1 for anything else
// Run returns.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// Run serves cfg until ctx ends, then shuts down gracefully: clients are
// closed with 1001 (reconnect later). It logs to stderr. A Config that must
// not run is a *ConfigError; any other error is what failed at start.
func Run(ctx context.Context, cfg Config, stderr io.Writer) error {
	version := buildinfo.Get().Version
	log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return &ConfigError{err.Error()}
	}
	if err := CheckExposure(cfg, log); err != nil { // refuses an open listener
		return err
	}
	if cfg.DebugAddr != "" {
		_, stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	var (
		st      store.Store
		kind    = "cluster"
		where   string
		cluster *cluster.Store
	)
	if cfg.Cluster.URLs != "" {
		cs, at, stop, err := openCluster(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer stop()
		st, where, cluster = cs, at, cs
	} else {
		st, kind, where, err = openStore(ctx, cfg.Store, cfg.DataDir, log)
		if err != nil {
			return err
		}
		defer st.Close()
	}
	reg := metrics.New() // GET /metrics; times the store's appends
	st = reg.Store(st)
	stopRetention := startRetention(ctx, st, cfg.Retention, log)
	defer stopRetention() // runs before st.Close: no sweep on a closed store

	storeFull, stopSize := watchStoreSize(ctx, st, maxStoreMB(kind, cfg.MaxStoreMB), log)
	defer stopSize()
	hopts := hub.Options{
		Store: st, Logger: log, Server: "relayd " + version, MaxQueue: cfg.MaxQueue, StoreFull: storeFull,
		HeartbeatMS: cfg.PingInterval.Milliseconds(),
		Limits:      cfg.Limits,
	}
	if cluster != nil {
		hopts.Remote = cluster
	}
	h := hub.New(hopts)
	if err := h.LoadHolds(ctx); err != nil { // the operator's holds outlive a restart
		return err
	}
	if cluster != nil {
		cluster.Attach(h) // mail and presence from the other nodes reach this hub
		if err := reg.WatchCluster(clusterFigures(cluster)); err != nil {
			log.Error("cluster metrics unavailable", "err", err)
		}
	}
	srv := &server.Server{
		Hub: h, Logger: log, Version: version, Metrics: reg,
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
			return fmt.Errorf("cannot listen on %s: the port is taken — is another relayd running? (curl %s/healthz) Use --port to pick another", addr, "http://"+addr)
		}
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("relayd listening", "addr", ln.Addr().String(), "version", version, "store", kind, "data", where,
		"auth", cfg.Token != "" || cfg.Tokens != nil, "scheme", cfg.scheme())
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}

	select {
	case err := <-served:
		return fmt.Errorf("serving on %s: %w", addr, err)
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

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

// RelayHome is $RELAY_HOME, by default ~/claude-relay: the SQLite store
// lives in its data folder unless --data-dir says otherwise.
func RelayHome() (string, error) {
	if h := os.Getenv("RELAY_HOME"); h != "" {
		return h, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory for the data dir; set RELAY_HOME or --data-dir: %w", err)
	}
	return filepath.Join(home, "claude-relay"), nil
}

// FaultJournalWriteDelayEnv names the environment variable that makes
// every write of the journal store wait (store.JournalOptions.WriteDelay):
// fault injection for relayd's kill -9 tests, never for use.
const FaultJournalWriteDelayEnv = "RELAYD_FAULT_JOURNAL_WRITE_DELAY"

// openStore opens the store kind names in dir ($RELAY_HOME/data when
// empty) and says which kind it opened and where. auto, the default, opens
// the durable store the directory already holds and the journal store in
// a new one: an upgrade never starts empty beside its mail, a new team gets
// the store with the shorter round trip (docs/operations.md, "The journal
// store").
func openStore(ctx context.Context, kind, dir string, log *slog.Logger) (st store.Store, opened, where string, err error) {
	if kind == "memory" {
		return store.NewMemory(), "memory", "memory", nil
	}
	if kind, dir, err = ResolveStore(kind, dir); err != nil {
		return nil, "", "", err
	}
	if kind == "journal" {
		opts := store.JournalOptions{Logger: log}
		if v := os.Getenv(FaultJournalWriteDelayEnv); v != "" {
			if opts.WriteDelay, err = time.ParseDuration(v); err != nil {
				return nil, "", "", fmt.Errorf("%s=%q is not a duration (as 2ms): %w", FaultJournalWriteDelayEnv, v, err)
			}
			log.Warn("fault injection: every write of the journal waits (unset the variable in use)", "env", FaultJournalWriteDelayEnv, "delay", opts.WriteDelay)
		}
		st, err = store.OpenJournal(ctx, dir, opts)
	} else {
		st, err = store.Open(ctx, dir, store.Options{Logger: log})
	}
	if err != nil {
		return nil, "", "", err
	}
	return st, kind, dir, nil
}

// ResolveStore is the durable store --store kind opens and its directory
// (--data-dir, $RELAY_HOME/data when empty): auto becomes the kind the
// directory holds (store.DurableKind), journal when it holds none.
func ResolveStore(kind, dir string) (string, string, error) {
	switch kind {
	case "auto", "sqlite", "journal":
	default:
		return "", "", fmt.Errorf("--store %q: use auto (the default), sqlite, journal or memory", kind)
	}
	dir, err := DataDir(dir)
	if err != nil {
		return "", "", err
	}
	if kind == "auto" {
		kind = store.DurableKind(dir)
		if kind == "" {
			kind = "journal"
		}
	}
	return kind, dir, nil
}
