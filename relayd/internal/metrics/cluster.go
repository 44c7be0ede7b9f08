package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ClusterNode is what one relayd node of a cluster (relayd --cluster) knows
// of it, read at scrape time. Every node serves its own /metrics: the
// figures are this node's view, labelled with its name, so a dashboard
// across the nodes shows which one falls behind or lost NATS.
type ClusterNode struct {
	Node       string // this relayd node's name in the cluster
	Server     string // the NATS server this node is connected to; "" when it is not
	Connected  bool
	Reconnects uint64 // times the NATS connection was re-established
	// The stream that holds the mail, as the NATS cluster reports it.
	StreamMessages, StreamBytes, StreamLastSeq uint64
	// Applied is the last stream seq this node has applied to its index:
	// StreamLastSeq - Applied is how far it lags behind the cluster.
	Applied uint64
	// IndexRestarts counts the stream consumers this node replaced
	// because its index stayed behind the stream.
	IndexRestarts uint64
	// Replicas are the NATS servers holding the stream.
	Replicas    []ClusterReplica
	RemotePeers int // ids online on other nodes
}

// ClusterReplica is one NATS server holding the mail stream.
type ClusterReplica struct {
	Server  string
	Leader  bool
	Current bool   // caught up with the leader
	Lag     uint64 // operations behind the leader
}

// WatchCluster registers the figures of a relayd started with --cluster,
// which read returns at each scrape. Call it once.
func (m *Metrics) WatchCluster(read func(context.Context) (ClusterNode, error)) error {
	return m.reg.Register(newClusterCollector(read))
}

// clusterCollector reports a ClusterNode at scrape time.
type clusterCollector struct {
	read func(context.Context) (ClusterNode, error)

	connected, reconnects, msgs, bytes, lastSeq, applied, lag, indexRestarts *prometheus.Desc
	replicaLag, replicaCurrent, leader, remotePeers                          *prometheus.Desc
}

func newClusterCollector(read func(context.Context) (ClusterNode, error)) *clusterCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"node"}, labels...), nil)
	}
	return &clusterCollector{
		read:           read,
		connected:      d("relayd_cluster_connected", "1 while this node is connected to NATS (server: which NATS server), else 0: sends are refused with store_unavailable meanwhile.", "server"),
		reconnects:     d("relayd_cluster_reconnects_total", "Times this node's NATS connection was re-established."),
		msgs:           d("relayd_cluster_stream_messages", "Messages and mailbox events in the cluster's stream (all nodes' mail, within --retention)."),
		bytes:          d("relayd_cluster_stream_bytes", "Bytes in the cluster's stream, on each NATS server that holds a replica."),
		lastSeq:        d("relayd_cluster_stream_last_seq", "The stream's last sequence number, as the NATS cluster reports it."),
		applied:        d("relayd_cluster_applied_seq", "The last stream sequence number this node has applied (what its clients are served from)."),
		indexRestarts:  d("relayd_cluster_index_restarts_total", "Times this node's index stayed behind the stream with no progress (its consumer's NATS server gone) and followed it with a new consumer."),
		lag:            d("relayd_cluster_lag", "Stream entries this node has not applied yet: above a few for long, its clients see other nodes' mail late."),
		replicaLag:     d("relayd_cluster_replica_lag", "Operations a NATS server holding the stream is behind the stream's leader.", "server"),
		replicaCurrent: d("relayd_cluster_replica_current", "1 when a NATS server holding the stream is caught up with its leader.", "server"),
		leader:         d("relayd_cluster_stream_leader", "1 for the NATS server leading the stream (it orders every write).", "server"),
		remotePeers:    d("relayd_cluster_remote_peers", "Ids online on the other nodes, as this node sees them."),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connected, c.reconnects, c.msgs, c.bytes, c.lastSeq, c.applied, c.lag, c.indexRestarts,
		c.replicaLag, c.replicaCurrent, c.leader, c.remotePeers} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	// The stream's figures come from the NATS cluster: a scrape must not
	// hang on a cluster without a leader, so it reports the failure.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := c.read(ctx)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{n.Node}, labels...)...)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	// What the node knows of itself is there even when the cluster does
	// not answer.
	gauge(c.connected, b(n.Connected), n.Server)
	ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(n.Reconnects), n.Node)
	ch <- prometheus.MustNewConstMetric(c.indexRestarts, prometheus.CounterValue, float64(n.IndexRestarts), n.Node)
	gauge(c.remotePeers, float64(n.RemotePeers))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.msgs, err)
		return
	}
	gauge(c.msgs, float64(n.StreamMessages))
	gauge(c.bytes, float64(n.StreamBytes))
	gauge(c.lastSeq, float64(n.StreamLastSeq))
	gauge(c.applied, float64(n.Applied))
	gauge(c.lag, float64(n.StreamLastSeq-min(n.Applied, n.StreamLastSeq)))
	for _, r := range n.Replicas {
		gauge(c.replicaLag, float64(r.Lag), r.Server)
		gauge(c.replicaCurrent, b(r.Current), r.Server)
		gauge(c.leader, b(r.Leader), r.Server)
	}
}
