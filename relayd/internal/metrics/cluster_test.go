package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A node's cluster figures as a scraper reads them: its connection, the
// stream, how far it lags, each replica.
func TestClusterFigures(t *testing.T) {
	m := New()
	node := ClusterNode{Node: "relay2", Server: "nats-2", Connected: true, Reconnects: 3,
		StreamMessages: 120, StreamBytes: 40960, StreamLastSeq: 130, Applied: 127, IndexRestarts: 2, RemotePeers: 4,
		Replicas: []ClusterReplica{{Server: "nats-1", Leader: true, Current: true}, {Server: "nats-2", Current: true, Lag: 2}, {Server: "nats-3", Lag: 90}}}
	if err := m.WatchCluster(func(context.Context) (ClusterNode, error) { return node, nil }); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP relayd_cluster_connected 1 while this node is connected to NATS (server: which NATS server), else 0: sends are refused with store_unavailable meanwhile.
# TYPE relayd_cluster_connected gauge
relayd_cluster_connected{node="relay2",server="nats-2"} 1
# HELP relayd_cluster_index_restarts_total Times this node's index stayed behind the stream with no progress (its consumer's NATS server gone) and followed it with a new consumer.
# TYPE relayd_cluster_index_restarts_total counter
relayd_cluster_index_restarts_total{node="relay2"} 2
# HELP relayd_cluster_lag Stream entries this node has not applied yet: above a few for long, its clients see other nodes' mail late.
# TYPE relayd_cluster_lag gauge
relayd_cluster_lag{node="relay2"} 3
# HELP relayd_cluster_reconnects_total Times this node's NATS connection was re-established.
# TYPE relayd_cluster_reconnects_total counter
relayd_cluster_reconnects_total{node="relay2"} 3
# HELP relayd_cluster_replica_current 1 when a NATS server holding the stream is caught up with its leader.
# TYPE relayd_cluster_replica_current gauge
relayd_cluster_replica_current{node="relay2",server="nats-1"} 1
relayd_cluster_replica_current{node="relay2",server="nats-2"} 1
relayd_cluster_replica_current{node="relay2",server="nats-3"} 0
# HELP relayd_cluster_replica_lag Operations a NATS server holding the stream is behind the stream's leader.
# TYPE relayd_cluster_replica_lag gauge
relayd_cluster_replica_lag{node="relay2",server="nats-1"} 0
relayd_cluster_replica_lag{node="relay2",server="nats-2"} 2
relayd_cluster_replica_lag{node="relay2",server="nats-3"} 90
# HELP relayd_cluster_stream_leader 1 for the NATS server leading the stream (it orders every write).
# TYPE relayd_cluster_stream_leader gauge
relayd_cluster_stream_leader{node="relay2",server="nats-1"} 1
relayd_cluster_stream_leader{node="relay2",server="nats-2"} 0
relayd_cluster_stream_leader{node="relay2",server="nats-3"} 0
`
	names := []string{"relayd_cluster_connected", "relayd_cluster_index_restarts_total", "relayd_cluster_lag", "relayd_cluster_reconnects_total",
		"relayd_cluster_replica_current", "relayd_cluster_replica_lag", "relayd_cluster_stream_leader"}
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

// A cluster that does not answer (no stream leader, NATS gone) leaves the
// stream's figures out of the scrape, says why, and still reports what the
// node knows of itself: that it is not connected.
func TestClusterFiguresWhenNATSIsGone(t *testing.T) {
	m := New()
	read := func(context.Context) (ClusterNode, error) {
		return ClusterNode{Node: "relay1", Reconnects: 7}, errors.New("nats: connection closed")
	}
	if err := m.WatchCluster(read); err != nil {
		t.Fatal(err)
	}
	fams, err := m.reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "connection closed") {
		t.Fatalf("gather error %v, want the cluster's", err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, mm := range f.GetMetric() {
			switch {
			case mm.GetGauge() != nil:
				got[f.GetName()] = mm.GetGauge().GetValue()
			case mm.GetCounter() != nil:
				got[f.GetName()] = mm.GetCounter().GetValue()
			}
		}
	}
	if v, ok := got["relayd_cluster_connected"]; !ok || v != 0 {
		t.Errorf("relayd_cluster_connected = %v (present %v), want 0", v, ok)
	}
	if got["relayd_cluster_reconnects_total"] != 7 {
		t.Errorf("reconnects %v, want 7", got["relayd_cluster_reconnects_total"])
	}
	if _, ok := got["relayd_cluster_stream_messages"]; ok {
		t.Error("stream figures reported from a cluster that did not answer")
	}
}
