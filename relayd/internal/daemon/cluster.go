package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claude-relay/claude-relay/relayd/internal/cluster"
	"github.com/claude-relay/claude-relay/relayd/internal/metrics"
)

// ClusterConfig is how a relayd joins a cluster of relayd nodes on NATS
// JetStream (docs/cluster.md). The zero value is a relay on its own.
type ClusterConfig struct {
	// URLs are the NATS servers (nats://host:4222, tls://…), or "embedded"
	// to run a NATS server inside relayd; "" for no cluster.
	URLs      string
	Creds     string // NATS credentials file (JWT + nkey)
	CA        string // PEM root CA of the NATS servers' TLS certificates
	Cert, Key string // PEM client certificate and key for NATS TLS
	Replicas  int    // copies of each write; 0: 3 on a NATS cluster, 1 on one server
	Node      string // this node's name in presence; "" is host:listen

	// The embedded NATS server's settings (URLs "embedded").
	NATSName          string
	NATSListen        string   // host:port for other nodes' NATS clients; "" in-process only
	NATSClusterListen string   // host:port for NATS routes; "" a single NATS node
	NATSRoutes        []string // nats-route://host:port of the other NATS nodes
	NATSSyncAlways    bool     // fsync every write
}

// Credentials are the NATS options of Creds, CA, Cert and Key: how relayd
// (and relayd doctor) authenticate to the NATS servers.
func (cc ClusterConfig) Credentials() []nats.Option {
	var opts []nats.Option
	if cc.Creds != "" {
		opts = append(opts, nats.UserCredentials(cc.Creds))
	}
	if cc.CA != "" {
		opts = append(opts, nats.RootCAs(cc.CA))
	}
	if cc.Cert != "" {
		opts = append(opts, nats.ClientCert(cc.Cert, cc.Key))
	}
	return opts
}

// openCluster starts the embedded NATS server if asked, connects and opens
// the cluster store. stop closes what it opened, store last.
func openCluster(ctx context.Context, cfg Config, log *slog.Logger) (st *cluster.Store, where string, stop func(), err error) {
	cc := cfg.Cluster
	var closers []func()
	stop = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	opts := []nats.Option{nats.Name("relayd " + cfg.Listen), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("lost the NATS connection; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connection back", "server", nc.ConnectedUrlRedacted())
		})}
	opts = append(opts, cc.Credentials()...)
	var nc *nats.Conn
	replicas := cc.Replicas
	if cc.URLs == "embedded" {
		dir, derr := DataDir(cfg.DataDir)
		if derr != nil {
			return nil, "", stop, derr
		}
		name := cc.NATSName
		if name == "" {
			name, _ = os.Hostname()
		}
		e, eerr := cluster.StartEmbedded(cluster.EmbedOptions{Name: name, StoreDir: filepath.Join(dir, "nats"),
			Listen: cc.NATSListen, ClusterListen: cc.NATSClusterListen, Routes: cc.NATSRoutes, SyncAlways: cc.NATSSyncAlways})
		if eerr != nil {
			return nil, "", stop, eerr
		}
		closers = append(closers, e.Shutdown)
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := e.WaitJetStream(wctx); err != nil {
			return nil, "", stop, fmt.Errorf("%w (are the other NATS nodes of --nats-routes up?)", err)
		}
		if nc, err = e.Connect(opts...); err != nil {
			return nil, "", stop, fmt.Errorf("connect to the embedded NATS server: %w", err)
		}
		where = "embedded NATS " + name + " in " + filepath.Join(dir, "nats")
		if replicas == 0 && cc.NATSClusterListen != "" {
			replicas = 3
		}
	} else {
		if nc, err = nats.Connect(cc.URLs, opts...); err != nil {
			return nil, "", stop, fmt.Errorf("cannot reach the NATS cluster at %s: %w — is nats-server running with JetStream? (docs/cluster.md)", cc.URLs, err)
		}
		where = "NATS " + cc.URLs
		if replicas == 0 && nc.ConnectedClusterName() != "" {
			replicas = 3
		}
	}
	closers = append(closers, nc.Close)
	node := cc.Node
	if node == "" {
		host, _ := os.Hostname()
		node = host + "/" + cfg.Listen
	}
	st, err = cluster.Open(ctx, cluster.Options{Conn: nc, Node: node, Replicas: replicas, Retention: cfg.Retention, Logger: log})
	if err != nil {
		return nil, "", stop, err
	}
	closers = append(closers, func() { st.Close() })
	return st, where, stop, nil
}

// DataDir is the data directory: --data-dir, or $RELAY_HOME/data when it is empty.
func DataDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	home, err := RelayHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "data"), nil
}

// clusterFigures reads the node's Health for /metrics at each scrape.
func clusterFigures(st *cluster.Store) func(context.Context) (metrics.ClusterNode, error) {
	return func(ctx context.Context) (metrics.ClusterNode, error) {
		h := st.Health(ctx)
		n := metrics.ClusterNode{Node: h.Node, Connected: h.Connected, Reconnects: h.Reconnects,
			StreamLastSeq: h.StreamLast, Applied: h.Applied, IndexRestarts: h.IndexRestarts, RemotePeers: h.Online}
		if h.Connected {
			n.Server = h.ServerName
		}
		if s := h.Stream; s != nil {
			n.StreamMessages, n.StreamBytes = s.Messages, s.Bytes
			for _, p := range s.Peers {
				n.Replicas = append(n.Replicas, metrics.ClusterReplica{Server: p.Server, Leader: p.Leader, Current: p.Current, Lag: p.Lag})
			}
		}
		return n, h.Err
	}
}
