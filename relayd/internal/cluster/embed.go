package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbedOptions configure a NATS server run inside relayd: the one-binary
// setup (each relayd carries its NATS node) and the tests.
type EmbedOptions struct {
	// Name is the server's name in its cluster; it must differ between
	// the cluster's nodes. Defaults to "relayd".
	Name string
	// StoreDir is where JetStream keeps its files. Required.
	StoreDir string
	// Listen is host:port for NATS clients (other relayd nodes, the nats
	// CLI); "" serves in-process connections only (and a loopback port
	// of its choosing when ClusterListen is set).
	Listen string
	// ClusterName names the NATS cluster; defaults to "relay".
	ClusterName string
	// ClusterListen is host:port for the routes between NATS nodes; ""
	// runs a single node.
	ClusterListen string
	// Routes are the other nodes' route URLs (nats-route://host:port).
	Routes []string
	// SyncAlways fsyncs every JetStream write (sync_interval: always)
	// instead of every 2 minutes: slower, but a power loss of a single
	// node loses nothing it acknowledged.
	SyncAlways bool
	// Log, when set, gets the server's notices, warnings and errors.
	Log server.Logger
	// ReadyTimeout bounds the wait for the server to accept clients.
	// Defaults to 10 s.
	ReadyTimeout time.Duration
}

// Embedded is a NATS server with JetStream running in this process.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server with JetStream and waits until it
// accepts connections. A clustered node is ready to accept clients before
// its cluster has elected a JetStream leader; WaitJetStream waits for that.
func StartEmbedded(o EmbedOptions) (*Embedded, error) {
	if o.StoreDir == "" {
		return nil, errors.New("embedded NATS: a store directory is required")
	}
	if o.Name == "" {
		o.Name = "relayd"
	}
	if o.ClusterName == "" {
		o.ClusterName = "relay"
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	opts := &server.Options{
		ServerName: o.Name, JetStream: true, StoreDir: o.StoreDir, SyncAlways: o.SyncAlways,
		NoSigs: true, NoLog: o.Log == nil, DontListen: o.Listen == "" && o.ClusterListen == "",
		// In-process and loopback clients: the defaults guard a public
		// server against floods we do not have.
		MaxPayload: 8 << 20,
	}
	if o.Listen == "" && o.ClusterListen != "" {
		// A server with routes must take clients too (nats-server starts
		// its routes once the client listener is up): any loopback port.
		opts.Host, opts.Port = "127.0.0.1", -1
	}
	if o.Listen != "" {
		host, port, err := splitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS listen address %q: %w", o.Listen, err)
		}
		opts.Host, opts.Port = host, port
	}
	if o.ClusterListen != "" {
		host, port, err := splitHostPort(o.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS cluster address %q: %w", o.ClusterListen, err)
		}
		opts.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: host, Port: port}
		for _, r := range o.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("embedded NATS route %q: give nats-route://host:port", r)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if o.Log != nil {
		srv.SetLogger(o.Log, false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(o.ReadyTimeout) {
		// Not waited for: a server stuck on its way up (a route listener
		// waiting for a client listener that never came) never finishes
		// shutting down, and relayd must exit with the error.
		go srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not accept connections within %s (ports %q/%q taken?)", o.ReadyTimeout, o.Listen, o.ClusterListen)
	}
	return &Embedded{srv: srv}, nil
}

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q is not a number", p)
	}
	if port == 0 {
		port = -1 // NATS picks a free port for -1
	}
	return host, port, nil
}

// Connect opens an in-process client connection (no TCP).
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect("", append([]nats.Option{nats.InProcessServer(e.srv)}, opts...)...)
}

// ClientURL is the URL other processes reach this server at ("" when it
// serves in-process connections only).
func (e *Embedded) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// WaitJetStream waits until this node has a JetStream meta leader and is
// current with it: streams can be created and written.
func (e *Embedded) WaitJetStream(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if e.srv.JetStreamEnabled() && (!e.srv.JetStreamIsClustered() || e.srv.JetStreamIsCurrent()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embedded NATS %s: no JetStream leader: %w", e.srv.Name(), ctx.Err())
		case <-tick.C:
		}
	}
}

// PlacementPeers is how many JetStream servers the meta leader can place a
// stream's replicas on: online, with JetStream, and heard from. It is 0 on
// a node that is not the leader. A cluster can be current before every
// peer's first report has reached the leader; until then an R3 stream is
// refused with "no suitable peers for placement".
func (e *Embedded) PlacementPeers() int { return len(e.srv.JetStreamClusterPeers()) }

// Name is the server's name.
func (e *Embedded) Name() string { return e.srv.Name() }

// Shutdown stops the server and waits until it has.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
