// Package natstest starts in-process NATS clusters with JetStream for
// tests, on loopback ports chosen at random.
package natstest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/internal/cluster"
)

// Cluster is n NATS nodes routed to each other.
type Cluster struct {
	Nodes []*cluster.Embedded
	opts  []cluster.EmbedOptions
}

// Start runs an n-node NATS cluster with JetStream (one node when n is 1),
// waits until every node is current with an elected JetStream leader that
// has heard from every node (so an R-n stream can be placed), and
// shuts it down when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c, _ := StartSome(t, n, n)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, e := range c.Nodes {
		if err := e.WaitJetStream(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n > 1 {
		// Current is not enough for placement: wait until the leader has
		// heard from every node, so a stream of n replicas can be created.
		testkit.WaitFor(t, 60*time.Second, fmt.Sprintf("the JetStream leader of %d NATS nodes to hear from every node", n), func() bool {
			for _, e := range c.Nodes {
				if e.PlacementPeers() == n {
					return true
				}
			}
			return false
		})
	}
	return c
}

// StartSome lays out an n-node NATS cluster and runs its first `run` nodes
// in this process, without waiting for a JetStream leader (a majority of n
// must be up for one). It returns the routes of the other nodes, for a
// process of their own: relayd --cluster embedded --nats-cluster-listen
// Listen[i] --nats-routes Routes.
func StartSome(t testing.TB, n, run int) (*Cluster, Layout) {
	t.Helper()
	var l Layout
	for range n {
		addr := freeAddr(t)
		l.Listen = append(l.Listen, addr)
		l.Routes = append(l.Routes, "nats-route://"+addr)
	}
	c := &Cluster{}
	for i := range run {
		o := cluster.EmbedOptions{Name: fmt.Sprintf("n%d", i+1), StoreDir: t.TempDir(), Listen: "127.0.0.1:0"}
		if path := os.Getenv("NATSTEST_LOG"); path != "" {
			o.Log = logger{logFile(t, path), o.Name}
		}
		if n > 1 {
			o.ClusterListen, o.Routes = l.Listen[i], l.Routes
		}
		e, err := cluster.StartEmbedded(o)
		if err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, e)
		c.opts = append(c.opts, o)
	}
	t.Cleanup(func() {
		for _, e := range c.Nodes {
			e.Shutdown()
		}
	})
	return c, l
}

// Layout is where a cluster's nodes take routes.
type Layout struct {
	Listen []string // host:port of each node's route listener
	Routes []string // nats-route://… of every node
}

// URLs are the nodes' client URLs, comma-separated as relayd --cluster
// takes them.
func (c *Cluster) URLs() string {
	s := ""
	for i, e := range c.Nodes {
		if i > 0 {
			s += ","
		}
		s += e.ClientURL()
	}
	return s
}

// freeAddr returns a loopback address whose port was free a moment ago.
// NATS routes must name their peers' ports before those listen, so the
// ports are picked in advance (the nats-server tests do the same).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// logger writes a server's log to the file NATSTEST_LOG names.
type logger struct {
	w    io.Writer
	name string
}

func logFile(t testing.TB, path string) io.Writer {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func (l logger) logf(level, f string, a ...any) {
	fmt.Fprintf(l.w, "%s %s %s "+f+"\n", append([]any{time.Now().Format("15:04:05.000"), l.name, level}, a...)...)
}

func (l logger) Noticef(f string, a ...any) { l.logf("INF", f, a...) }
func (l logger) Warnf(f string, a ...any)   { l.logf("WRN", f, a...) }
func (l logger) Fatalf(f string, a ...any)  { l.logf("FTL", f, a...) }
func (l logger) Errorf(f string, a ...any)  { l.logf("ERR", f, a...) }
func (l logger) Debugf(f string, a ...any)  {}
func (l logger) Tracef(f string, a ...any)  {}
