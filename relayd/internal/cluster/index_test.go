package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/cluster/natstest"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// indexBound is how soon every node's index must have a message, even when
// the NATS server that held a node's index consumer was killed a moment
// before: the node makes a new consumer on a server left (its watchdog,
// index.go) within a few seconds. It counts from when the stream accepted
// the message and the cluster can place a consumer again, whichever is
// later: a consumer is made by the JetStream leader, and when the server
// killed was that leader, none can be made until the others elect one
// (up to 9 s and more on a loaded machine), though the stream, led
// elsewhere, takes mail meanwhile.
const indexBound = 8 * time.Second

// Each relayd node follows the stream with a consumer that lives on one
// NATS server. Kill -9 of exactly that server (a relayd process carrying
// it), and mail sent afterwards through a node left still reaches the
// agents of every node within indexBound of being accepted: no node's
// index stays behind the stream ("cluster index at seq 6, waiting for 17").
func TestIndexFollowsAfterItsNATSServerIsKilled(t *testing.T) {
	// Three relayd processes carry the three NATS nodes, so that one can
	// die without a word (a NATS server shut down in this process tells
	// the others it goes, and they stop placing consumers on it at once).
	_, layout := natstest.StartSome(t, 3, 0)
	natsURLs := make([]string, 3)
	var args [][]string
	for i := range 3 {
		listen := testkit.RefusedAddr(t)
		natsURLs[i] = "nats://" + listen
		args = append(args, append(nodeArgsOn(nil, i, fmt.Sprintf("p%d", i+1)), "--cluster", "embedded", "--nats-name", fmt.Sprintf("n%d", i+1),
			"--nats-listen", listen, "--nats-cluster-listen", layout.Listen[i], "--nats-routes", strings.Join(layout.Routes, ",")))
	}
	procs := relaytest.StartProcesses(t, args...)

	// Three nodes in this process, whose index consumers the kill hits,
	// each with an agent.
	var watchers []*client
	var ids []string
	var nodes []*relaytest.Relay
	for i := range 3 {
		name := fmt.Sprintf("w%d", i+1)
		r := relaytest.Start(t, nodeArgsOn(natsURLs, i, name)...)
		nodes = append(nodes, r)
		w, _ := connect(t, r.URL(), "W"+name[1:], 0)
		watchers = append(watchers, w)
		ids = append(ids, w.id)
	}
	// The index consumers are up: a first message reaches everyone.
	s0, _ := connect(t, procs[0].URL(), "S0", 0)
	s0.sendTo("0", "before", ids...)
	for _, w := range watchers {
		if m := expect[*protocol.Message](w); m.Body != "before" {
			t.Fatalf("%s got %+v", w.id, m)
		}
	}

	// The NATS server holding the most of the in-process nodes' index
	// consumers dies with its relayd process.
	hosts := indexHosts(t, natsURLs)
	victim, most := 0, -1
	for i := range 3 {
		n := 0
		for _, node := range hosts[fmt.Sprintf("n%d", i+1)] {
			if strings.HasPrefix(node, "w") {
				n++
			}
		}
		if n > most {
			victim, most = i, n
		}
	}
	t.Logf("index consumers by NATS server: %v; killing n%d", hosts, victim+1)
	procs[victim].Kill(t)
	killed := time.Now()

	// Mail keeps flowing through a node left.
	sender := newAgent(t, "S", []string{procs[(victim+1)%3].URL(), procs[(victim+2)%3].URL()})
	const n = 5
	var bodies []string
	for i := range n {
		bodies = append(bodies, fmt.Sprintf("after #%d", i))
	}
	arrived := make([]map[string]time.Time, len(watchers))
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 3*patience)
	defer cancel()
	placeable := make(chan time.Time, 1)
	go func() { placeable <- canPlace(ctx, t, natsURLs) }()
	for i, w := range watchers {
		arrived[i] = map[string]time.Time{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(arrived[i]) < n {
				f, err := w.read(time.Until(deadlineOf(ctx)))
				if err != nil {
					return
				}
				if m, ok := f.(*protocol.Message); ok {
					arrived[i][m.Body] = time.Now()
				}
			}
		}()
	}
	accepted := make([]time.Time, n)
	if _, err := sender.sendAll(ctx, bodies, ids, func(i int) { accepted[i] = time.Now() }); err != nil {
		t.Fatal(err)
	}
	t.Logf("the first send after the kill was accepted %s after it", accepted[0].Sub(killed).Round(time.Millisecond))
	wg.Wait() // each reader ends with all n, or at ctx's end
	placed := <-placeable
	t.Logf("the cluster could place a consumer again %s after the kill", placed.Sub(killed).Round(time.Millisecond))

	for i, w := range watchers {
		var slowest time.Duration
		for k, body := range bodies {
			at, ok := arrived[i][body]
			from := later(accepted[k], placed)
			if ok {
				slowest = max(slowest, at.Sub(from))
			}
			switch {
			case !ok:
				t.Errorf("%s never got %q (accepted %s after the kill)", w.id, body, accepted[k].Sub(killed).Round(time.Millisecond))
			case at.Sub(from) > indexBound:
				t.Errorf("%s got %q %s after it was accepted and a consumer could be placed, want within %s", w.id, body, at.Sub(from).Round(time.Millisecond), indexBound)
			}
		}
		on := hostOf(hosts, fmt.Sprintf("w%d", i+1))
		if on == fmt.Sprintf("n%d", victim+1) {
			on += ", the one killed"
		}
		t.Logf("%s (index consumer on %s) got each message at most %s after it was accepted and a consumer could be placed", w.id, on, slowest.Round(time.Millisecond))
	}
	for i, r := range nodes { // what each index did about it
		for _, line := range strings.Split(r.Logs(), "\n") {
			if strings.Contains(line, "cluster index") {
				t.Logf("w%d: %s", i+1, line)
			}
		}
	}
	if t.Failed() {
		t.Logf("the stream's consumers now (a timeout: its NATS server is gone):%s", consumerDump(natsURLs))
	}
}

// indexHosts asks the stream which NATS server holds each relayd node's
// index consumer: server name → nodes.
func indexHosts(t *testing.T, urls []string) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	stream, done, err := relayStream(ctx, urls)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	hosts := map[string][]string{}
	lister := stream.ListConsumers(ctx)
	for info := range lister.Info() {
		node, ok := strings.CutPrefix(info.Name, "index_")
		if !ok || info.Cluster == nil {
			continue
		}
		node, _, _ = strings.Cut(node, "_")
		hosts[info.Cluster.Leader] = append(hosts[info.Cluster.Leader], node)
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	return hosts
}

// relayStream is the cluster's stream as a NATS client of urls sees it;
// done closes the connection.
func relayStream(ctx context.Context, urls []string) (stream jetstream.Stream, done func(), err error) {
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err == nil {
		stream, err = js.Stream(ctx, "RELAY")
	}
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return stream, nc.Close, nil
}

// canPlace returns when the NATS cluster first placed a consumer of the
// stream after the kill (when the request that succeeded was made): it
// asks for a small consumer of its own until one is made, each time with
// a new name, as the index's watchdog does.
func canPlace(ctx context.Context, t *testing.T, urls []string) time.Time {
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Error(err)
		return time.Now()
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Error(err)
		return time.Now()
	}
	for ctx.Err() == nil {
		asked := time.Now()
		actx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := js.CreateConsumer(actx, "RELAY", jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
			MemoryStorage: true, Replicas: 1, InactiveThreshold: 10 * time.Second})
		cancel()
		if err == nil {
			dctx, cancel := context.WithTimeout(ctx, time.Second)
			js.DeleteConsumer(dctx, "RELAY", c.CachedInfo().Name)
			cancel()
			return asked
		}
		time.Sleep(100 * time.Millisecond) // the next try, bounded by ctx
	}
	return time.Now()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// hostOf is the server that hosts node's index consumer in hosts.
func hostOf(hosts map[string][]string, node string) string {
	for server, nodes := range hosts {
		if slices.Contains(nodes, node) {
			return server
		}
	}
	return "?"
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// consumerDump lists the stream's consumers and where each one is, for a
// failure's report: one whose server is gone does not answer.
func consumerDump(urls []string) string {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	stream, done, err := relayStream(ctx, urls)
	if err != nil {
		return err.Error()
	}
	defer done()
	var b strings.Builder
	names := stream.ConsumerNames(ctx)
	for name := range names.Name() {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := stream.Consumer(cctx, name)
		ccancel()
		if err != nil {
			fmt.Fprintf(&b, "\n  %s: %v", name, err)
			continue
		}
		ci := c.CachedInfo()
		on := "?"
		if ci.Cluster != nil {
			on = ci.Cluster.Leader
		}
		fmt.Fprintf(&b, "\n  %s on %s, from seq %d, delivered up to %d, %d pending, made %s", name, on, ci.Config.OptStartSeq, ci.Delivered.Stream, ci.NumPending, ci.Created.Format("15:04:05.000"))
	}
	if err := names.Err(); err != nil {
		fmt.Fprintf(&b, "\n  listing them: %v", err)
	}
	return b.String()
}
