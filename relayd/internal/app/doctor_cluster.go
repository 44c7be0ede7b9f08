package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/relayd/internal/cluster"
)

// checkCluster is doctor's store check for a relayd started with
// --cluster: the NATS servers reachable with the credentials given, with
// JetStream, and the mail stream and the presence bucket there with every
// replica caught up. The running node's own lag is checkClusterLag's.
func checkCluster(ctx context.Context, c *cli.Context, r *report) {
	cc, err := clusterConfigFrom(c)
	if err != nil {
		r.fail("cluster", err.Error(), "fix the --cluster flags: relayd refuses to start with them")
		return
	}
	urls := cc.URLs
	if urls == "embedded" {
		if cc.NATSListen == "" {
			r.ok("cluster", "NATS runs inside relayd (--cluster embedded, no --nats-listen): checked through the running relayd below")
			return
		}
		urls = "nats://" + probeAddr(cc.NATSListen)
	}
	opts := append(cc.Credentials(), nats.Name("relayd doctor"), nats.Timeout(5*time.Second), nats.NoReconnect())
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		r.fail("cluster", fmt.Sprintf("NATS not reachable at %s: %v", urls, err),
			"start the NATS server of this machine (deploy/cluster: systemctl status nats-server), or give --cluster the URLs of running ones; with credentials or TLS, check --cluster-creds, --cluster-ca, --cluster-cert")
		return
	}
	defer nc.Close()
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rep, err := cluster.Inspect(ictx, nc)
	if errors.Is(err, cluster.ErrNoJetStream) {
		r.fail("cluster", fmt.Sprintf("NATS %s at %s: %v", rep.Server, nc.ConnectedUrlRedacted(), err), "enable JetStream in that server's config (deploy/cluster/nats/cluster.conf) and restart it")
		return
	}
	if err != nil {
		r.fail("cluster", fmt.Sprintf("NATS %s at %s answers, but JetStream does not: %v", rep.Server, nc.ConnectedUrlRedacted(), err),
			"a NATS cluster elects a JetStream leader once two of three servers run: start the ones that are down")
		return
	}
	where := "a single NATS server"
	if rep.Cluster != "" {
		where = fmt.Sprintf("NATS cluster %q", rep.Cluster)
	}
	r.ok("cluster", fmt.Sprintf("NATS %s (v%s) at %s, in %s, with JetStream", rep.Server, rep.Version, nc.ConnectedUrlRedacted(), where))
	checkStream(r, rep)
	if !rep.Presence {
		r.warn("presence", "bucket "+cluster.PresenceBucket+" does not exist yet", "the first relayd started with --cluster creates it")
	} else {
		r.ok("presence", fmt.Sprintf("bucket %s: %d ids online across the nodes", cluster.PresenceBucket, rep.PresenceIDs))
	}
}

// checkStream reports the mail stream: there, led, every replica current.
func checkStream(r *report, rep cluster.Report) {
	s := rep.Stream
	switch {
	case s == nil:
		r.warn("stream", "stream "+cluster.StreamName+" does not exist yet", "the first relayd started with --cluster creates it")
		return
	case rep.Cluster != "" && s.Leader == "":
		r.fail("stream", "stream "+s.Name+" has no leader: fewer than a majority of its replicas are up, and writes are refused",
			"start the NATS servers that are down (journalctl -u nats-server on each machine)")
		return
	}
	var behind []string
	for _, p := range s.Peers {
		if !p.Current {
			behind = append(behind, fmt.Sprintf("%s (%d behind)", p.Server, p.Lag))
		}
	}
	msg := fmt.Sprintf("stream %s: %d messages, %d bytes, %d replica(s), leader %s", s.Name, s.Messages, s.Bytes, s.Replicas, s.Leader)
	switch {
	case len(behind) > 0:
		r.warn("stream", msg+"; not caught up: "+strings.Join(behind, ", "),
			"a replica catches up by itself; one that stays behind has a slow disk or a broken route (nats-server log on that machine)")
	case rep.Cluster != "" && s.Replicas < 3:
		r.warn("stream", msg+": the loss of one NATS server can lose acknowledged mail",
			"three replicas on three NATS servers: relayd --cluster-replicas 3, or nats stream edit "+s.Name+" --replicas 3")
	default:
		r.ok("stream", msg)
	}
}

// checkClusterLag asks the running relayd (its /metrics, with the token)
// whether it is connected to NATS and how far it lags behind the stream.
func checkClusterLag(ctx context.Context, c *cli.Context, r *report, addr string, useTLS bool) {
	token, err := readToken(c)
	if err != nil {
		return // the token check says what is wrong
	}
	fams, err := readMetrics(ctx, addr, useTLS, token)
	if err != nil {
		r.fail("lag", "cannot read the running relayd's /metrics: "+err.Error(), "check the token (RELAY_TOKEN, --token-file) doctor was given: /metrics needs it")
		return
	}
	value := func(name string) (float64, string, bool) {
		f := fams[name]
		if f == nil || len(f.GetMetric()) == 0 {
			return 0, "", false
		}
		m := f.GetMetric()[0]
		node := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "node" {
				node = l.GetValue()
			}
		}
		return m.GetGauge().GetValue(), node, true
	}
	connected, node, ok := value("relayd_cluster_connected")
	switch {
	case !ok:
		r.fail("lag", "the running relayd on "+addr+" is not in a cluster (no relayd_cluster figures in /metrics)",
			"restart it with the --cluster flags doctor was given (systemctl restart relayd)")
		return
	case connected == 0:
		r.fail("lag", "relayd node "+node+" lost its NATS connection: it refuses sends until it is back",
			"check the NATS server it connects to (--cluster); relayd reconnects by itself")
		return
	}
	lag, _, ok := value("relayd_cluster_lag")
	switch {
	case !ok:
		r.warn("lag", "relayd node "+node+" is connected, but the stream's figures did not come (no stream leader?)", "see the stream line above")
	case lag > 100:
		r.warn("lag", fmt.Sprintf("relayd node %s is %.0f stream entries behind: its clients see other nodes' mail late", node, lag),
			"a node catches up by itself; one that stays behind is short of CPU or far from its NATS server")
	default:
		r.ok("lag", fmt.Sprintf("relayd node %s is connected and %.0f stream entries behind", node, lag))
	}
}

// readMetrics reads the running relayd's /metrics.
func readMetrics(ctx context.Context, addr string, useTLS bool, token string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, url, err := getLocal(ctx, addr, useTLS, "/metrics", token)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}
