// Package daemon is relayd serving: Run assembles the store, hub and server
// a Config describes, listens, and serves until its context ends, then shuts
// down gracefully. It parses no flags: package app fills a Config from them,
// and tests build one with DefaultConfig.
package daemon

import (
	"crypto/tls"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/auth"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
)

// DefaultListen is where relayd listens without --listen: loopback, so
// nothing off this machine can connect.
const DefaultListen = "127.0.0.1:9999"

// Defaults of the limits. docs/security.md explains each.
const (
	defaultClientLimit = "100/10s" // requests per client id: a burst of 100, then 10 a second
	defaultPairLimit   = "1000/1h" // messages one agent sends another: a burst of 1000, then one every 3.6 s — a script gone wrong, not agents at work
	defaultLoopWarn    = "20/10m"  // a pair's exchange that looks like a loop: 20 messages within 10 min, three in four replies
	defaultGlobalLimit = "600/1m"  // agent-to-agent messages through the relay: a burst of 600, then 10 a second
	defaultAuthFail    = "30/1m"   // wrong tokens per remote address: a burst of 30, then one every 2 s
	defaultNewIDLimit  = "100/24h" // mailboxes one client may make for ids never seen (queue_if_unknown)
	defaultMaxConns    = 1000
	defaultMaxPerAddr  = 200
)

// Config is everything relayd serves with, resolved: files read, rates
// parsed, --port applied. The flags and their environment variables fill
// one (package app); tests build one with DefaultConfig and call Run, as
// main does through app.Main.
type Config struct {
	Listen string      // host:port; "127.0.0.1:0" takes any free port
	TLS    *tls.Config // serve wss:// and https://; nil for ws:// and http://

	Token        string       // the shared token, which may claim any id; "" for none
	Tokens       *auth.Tokens // per-identity tokens; nil for none
	Insecure     bool         // listen beyond loopback without a token
	AllowOrigins []string     // browser Origin host patterns allowed a WebSocket
	AllowHosts   []string     // host names a relay without a token answers to

	Store      string        // "auto" (the durable store DataDir holds; journal in a new one), "sqlite", "journal" or "memory"
	DataDir    string        // the durable store's folder; "" is $RELAY_HOME/data
	Retention  time.Duration // how long a message is kept; 0 keeps everything
	MaxQueue   int           // most unread messages kept for one recipient
	MaxStoreMB int           // most MiB of data the durable store holds; 0 no limit, StoreDefaultMB the store's own

	Limits          hub.Limits     // per client, per pair (and its loop warning), whole relay
	AuthFail        ratelimit.Rate // wrong tokens per remote address
	MaxConns        int            // open connections; 0 no limit
	MaxConnsPerAddr int            // open connections from one address; 0 no limit
	IdleTimeout     time.Duration  // close a client silent this long; 0 never
	MaxBody         int            // largest message body in bytes
	PingInterval    time.Duration  // keepalive period
	HelloTimeout    time.Duration  // how long a new connection may take to say hello

	Cluster ClusterConfig // join a cluster of relayd nodes on NATS; zero for none

	LogLevel  string // debug, info, warn or error
	LogFormat string // text or json
	DebugAddr string // serve Go's profiler on this loopback address; "" for none

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
		Listen: DefaultListen, Store: "auto", Retention: 7 * 24 * time.Hour, MaxQueue: 10000, MaxStoreMB: StoreDefaultMB,
		Limits:   hub.Limits{Client: must(defaultClientLimit), Pair: must(defaultPairLimit), Loop: must(defaultLoopWarn), Global: must(defaultGlobalLimit), NewIDs: must(defaultNewIDLimit)},
		AuthFail: must(defaultAuthFail), MaxConns: defaultMaxConns, MaxConnsPerAddr: defaultMaxPerAddr,
		MaxBody: protocol.DefaultMaxBodyBytes, PingInterval: 15 * time.Second, HelloTimeout: 10 * time.Second,
		LogLevel: "info", LogFormat: "text",
	}
}
