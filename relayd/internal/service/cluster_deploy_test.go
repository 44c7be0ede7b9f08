package service

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claude-relay/claude-relay/internal/testkit"
)

// clusterDir is deploy/cluster: the NATS configs and the service files of
// a three-machine relayd cluster (deploy/cluster/README.md).
var clusterDir = filepath.Join(deployDir, "cluster")

// formTimeout bounds each wait for the cluster to form (a JetStream leader,
// a stream placed on three nodes): generous for a loaded machine.
const formTimeout = 30 * time.Second

// clusterNodes are the machines deploy/cluster is written for.
var clusterNodes = []string{"relay1", "relay2", "relay3"}

// Each node's NATS config loads in nats-server as it is, and the three say
// what a cluster able to hold three replicas needs: JetStream with a store
// directory, one cluster name, routes to all three machines, a name of
// their own, clients on loopback only.
func TestClusterNATSConfigs(t *testing.T) {
	for _, node := range clusterNodes {
		o := loadNodeConfig(t, node)
		if o.ServerName != node || !o.JetStream || o.StoreDir == "" || o.Cluster.Name != "claude-relay" || o.Cluster.Port != 6222 {
			t.Errorf("%s.conf: name %q, jetstream %v, store %q, cluster %q port %d", node, o.ServerName, o.JetStream, o.StoreDir, o.Cluster.Name, o.Cluster.Port)
		}
		var routes []string
		for _, r := range o.Routes {
			routes = append(routes, r.Host)
		}
		if strings.Join(routes, " ") != "relay1.lan:6222 relay2.lan:6222 relay3.lan:6222" {
			t.Errorf("%s.conf routes %q: want all three machines", node, routes)
		}
		if ip := net.ParseIP(o.Host); ip == nil || !ip.IsLoopback() {
			t.Errorf("%s.conf: clients listen on %q; mail would leave the machine unencrypted", node, o.Host)
		}
		if o.SyncAlways || o.SyncInterval != 2*time.Minute {
			t.Errorf("%s.conf: sync_interval %v (always %v); the README's figures are for 2m", node, o.SyncInterval, o.SyncAlways)
		}
	}
}

// loadNodeConfig reads deploy/cluster/nats/NODE.conf as nats-server -c does.
func loadNodeConfig(tb testing.TB, node string) *server.Options {
	tb.Helper()
	o, err := server.ProcessConfigFile(filepath.Join(clusterDir, "nats", node+".conf"))
	if err != nil {
		tb.Fatalf("nats-server -c %s.conf: %v", node, err)
	}
	return o
}

// The three configs, moved onto loopback ports and temporary store
// directories (and nothing else), form a JetStream cluster that holds a
// three-replica stream and keeps taking writes with one node gone.
func TestClusterNATSConfigsFormR3(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*formTimeout)
	defer cancel()
	srvs, js := startDeployCluster(ctx, t, false)
	srvs[2].Shutdown() // one machine down: a majority of two still acknowledges
	// A publish sent while the stream's leader was the node shut down is
	// never answered, and one during the election after it is refused: a
	// client retries, as relayd does, with the same message id, so a retry
	// of a write that did land is stored once.
	for i := range 5 {
		var err error
		if !testkit.Eventually(formTimeout, func() bool {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			defer pcancel()
			_, err = js.Publish(pctx, "check.x", []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint(i)))
			return err == nil
		}) {
			t.Fatalf("publish %d with one node down: not acknowledged within %s (last: %v)", i, formTimeout, err)
		}
	}
	stream, err := js.Stream(ctx, "DEPLOYCHECK")
	if err != nil {
		t.Fatal(err)
	}
	if n := stream.CachedInfo().State.Msgs; n != 5 {
		t.Fatalf("the stream holds %d messages after 5 acknowledged publishes, want 5", n)
	}
}

// BenchmarkDeployClusterPublish is the cost of sync_interval: always on the
// deploy/cluster configs: one acknowledged publish at a time (a relay
// message's size) to a three-replica stream, flushed every 2 minutes
// (interval) or on every write (always). The three nodes share this
// machine's disk, so "always" pays three flushes a message where three
// machines would flush in parallel.
func BenchmarkDeployClusterPublish(b *testing.B) {
	for _, always := range []bool{false, true} {
		name := "interval"
		if always {
			name = "always"
		}
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			_, js := startDeployCluster(ctx, b, always)
			body := []byte(strings.Repeat("x", 300))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := js.Publish(ctx, "check.x", body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// startDeployCluster starts deploy/cluster's three NATS nodes on loopback
// ports and temporary store directories (syncAlways as with
// sync_interval: always) and returns them with a JetStream client holding
// the three-replica stream DEPLOYCHECK (subjects check.>).
func startDeployCluster(ctx context.Context, tb testing.TB, syncAlways bool) ([]*server.Server, jetstream.JetStream) {
	tb.Helper()
	routes := make([]string, len(clusterNodes))
	for i := range clusterNodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		routes[i] = ln.Addr().String()
		ln.Close()
	}
	var srvs []*server.Server
	for i, node := range clusterNodes {
		o := loadNodeConfig(tb, node)
		o.Host, o.Port, o.HTTPPort = "127.0.0.1", -1, 0
		o.StoreDir = tb.TempDir()
		o.Cluster.Host, o.Cluster.Port = splitPort(tb, routes[i])
		o.Routes = server.RoutesFromStr("nats-route://" + strings.Join(routes, ",nats-route://"))
		o.NoSigs, o.NoLog = true, true
		o.SyncAlways = syncAlways
		s, err := server.NewServer(o)
		if err != nil {
			tb.Fatal(err)
		}
		go s.Start()
		tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		if !s.ReadyForConnections(10 * time.Second) {
			tb.Fatalf("%s did not start", node)
		}
		srvs = append(srvs, s)
	}
	nc, err := nats.Connect(srvs[0].ClientURL() + "," + srvs[1].ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range srvs {
		testkit.WaitFor(tb, formTimeout, s.Name()+"'s JetStream leader", s.JetStreamIsCurrent)
	}
	var stream jetstream.Stream
	// A leader may not know every peer yet: "no suitable peers".
	testkit.WaitFor(tb, formTimeout, "a three-replica stream on the deploy/cluster configs", func() bool {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		defer acancel()
		stream, err = js.CreateStream(actx, jetstream.StreamConfig{Name: "DEPLOYCHECK", Subjects: []string{"check.>"}, Replicas: 3})
		return err == nil
	})
	if n := len(stream.CachedInfo().Cluster.Replicas) + 1; n != 3 {
		tb.Fatalf("stream on %d nodes, want 3", n)
	}
	return srvs, js
}

func splitPort(tb testing.TB, addr string) (string, int) {
	tb.Helper()
	host, p, _ := net.SplitHostPort(addr)
	var port int
	fmt.Sscan(p, &port)
	return host, port
}

// The service files of deploy/cluster are sound: systemd-analyze verify
// knows every directive of the units (their programs replaced by /bin/sh,
// which is there), and the plists are plists launchd can run.
func TestClusterServiceFiles(t *testing.T) {
	plists, _ := filepath.Glob(filepath.Join(clusterDir, "launchd", "*.plist"))
	units, _ := filepath.Glob(filepath.Join(clusterDir, "systemd", "*.service"))
	if len(plists) == 0 || len(units) == 0 {
		t.Fatalf("deploy/cluster: plists %q, units %q", plists, units)
	}
	for _, path := range plists {
		checkPlist(t, path, readFile(t, path))
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: unit files not verified here")
	}
	dir := t.TempDir()
	for _, path := range units {
		b := execStartRE.ReplaceAll(readFile(t, path), []byte("ExecStart=/bin/sh "))
		verifyUnit(t, sa, filepath.Join(dir, filepath.Base(path)), b)
	}
}

// execStartRE is the program of a unit's ExecStart.
var execStartRE = regexp.MustCompile(`(?m)^ExecStart=\S+ `)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
