package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/cluster/natstest"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// agent is a client that fails over between relay nodes as relay-mcp does:
// on a lost connection it dials the next node, resumes after the last seq
// it holds, and sends again, with the same ref, what was not answered.
type agent struct {
	t    testing.TB
	id   string
	urls []string // its home node first
	at   int      // index in urls of the node it uses

	ws   *websocket.Conn
	held uint64 // highest seq received (and acked)

	mu    sync.Mutex
	inbox map[string][]string // body → ids received with it
}

func newAgent(t testing.TB, id string, urls []string) *agent {
	return &agent{t: t, id: id, urls: urls, inbox: map[string][]string{}}
}

// dial connects to the first node, from the current one on, that answers
// hello; it returns false when none did within patience.
func (a *agent) dial(ctx context.Context) bool {
	if a.ws != nil {
		a.ws.CloseNow()
		a.ws = nil
	}
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		url := a.urls[a.at%len(a.urls)]
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ws, _, err := websocket.Dial(dctx, url+"/v1/ws", nil)
		if err == nil {
			ws.SetReadLimit(8 << 20)
			err = a.write(dctx, ws, &protocol.Hello{Proto: protocol.Version, ClientID: a.id, ResumeAfter: a.held, Quiet: true})
			if err == nil {
				var f protocol.Frame
				if f, err = readFrame(dctx, ws); err == nil {
					if _, ok := f.(*protocol.Welcome); !ok {
						err = fmt.Errorf("got %T, want welcome", f)
					}
				}
			}
			if err == nil {
				cancel()
				a.ws = ws
				return true
			}
			ws.CloseNow()
		}
		cancel()
		a.at++ // the next node
		// A client's pause between attempts, as relay-mcp's backoff: not a
		// wait for a condition (the loop itself is bounded by deadline).
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (a *agent) write(ctx context.Context, ws *websocket.Conn, f protocol.Frame) error {
	b, err := protocol.Encode(f)
	if err != nil {
		return err
	}
	return ws.Write(ctx, websocket.MessageText, b)
}

func readFrame(ctx context.Context, ws *websocket.Conn) (protocol.Frame, error) {
	_, b, err := ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	return protocol.Decode(b)
}

// sendAll sends each body to every one of to, one at a time, until the
// relay accepted it; it returns the accepted ids by body.
func (a *agent) sendAll(ctx context.Context, bodies []string, to []string, sent func(int)) (map[string]string, error) {
	accepted := map[string]string{}
	if !a.dial(ctx) {
		return nil, fmt.Errorf("%s: no node answered", a.id)
	}
	for i, body := range bodies {
		ref := fmt.Sprintf("%s-%d", a.id, i)
		for attempt := 0; ; attempt++ {
			if attempt > 50 {
				return accepted, fmt.Errorf("%s: %q not accepted after %d attempts", a.id, body, attempt)
			}
			id, err := a.sendOnce(ctx, ref, body, to)
			if err == nil {
				accepted[body] = id
				break
			}
			if ctx.Err() != nil {
				return accepted, ctx.Err()
			}
			var perr *protocol.Error
			if !errors.As(err, &perr) && !a.dial(ctx) { // the connection is gone: fail over
				return accepted, fmt.Errorf("%s: no node answered after %v", a.id, err)
			}
			time.Sleep(100 * time.Millisecond) // a client's pause before it retries: a store error, the cluster is electing
		}
		sent(i)
	}
	return accepted, nil
}

// sendOnce sends and waits for the answer; a *protocol.Error is the relay
// refusing it, any other error the connection failing.
func (a *agent) sendOnce(ctx context.Context, ref, body string, to []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	if err := a.write(ctx, a.ws, &protocol.Send{Ref: ref, To: to, Body: body}); err != nil {
		return "", err
	}
	for {
		f, err := readFrame(ctx, a.ws)
		if err != nil {
			return "", err
		}
		switch f := f.(type) {
		case *protocol.Accepted:
			if f.Ref == ref {
				return f.ID, nil
			}
		case *protocol.ErrorFrame:
			if f.Ref == ref {
				return "", &protocol.Error{Code: f.Code, Message: f.Message, Ref: f.Ref}
			}
		}
	}
}

// receive reads mail into the inbox, acking it, and fails over when its
// node goes away, until ctx ends.
func (a *agent) receive(ctx context.Context) {
	for ctx.Err() == nil {
		if a.ws == nil && !a.dial(ctx) {
			return
		}
		f, err := readFrame(ctx, a.ws)
		if err != nil {
			if ctx.Err() == nil {
				a.at++
				a.dial(ctx)
			}
			continue
		}
		if m, ok := f.(*protocol.Message); ok {
			a.mu.Lock()
			if !slices.Contains(a.inbox[m.Body], m.ID) { // an inbox holds an id once
				a.inbox[m.Body] = append(a.inbox[m.Body], m.ID)
			}
			a.mu.Unlock()
			a.held = max(a.held, m.Seq)
			a.write(ctx, a.ws, &protocol.Ack{Upto: a.held})
		}
	}
	if a.ws != nil {
		a.ws.CloseNow()
	}
}

func (a *agent) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.inbox)
}

// Five agents send to five others, spread over three relayd nodes, while
// one relayd node is killed with SIGKILL and one NATS node shut down: every
// accepted message reaches each of its recipients, and no inbox holds a
// message twice (neither the same id twice nor a retried send stored under
// two ids).
func TestNodeLossDuringBurst(t *testing.T) {
	nats := natstest.Start(t, 3)
	r0 := relaytest.Start(t, nodeArgs(nats, 0)...)
	r1 := relaytest.Start(t, nodeArgs(nats, 1)...)
	r2 := relaytest.StartProcess(t, nodeArgs(nats, 2)...) // the one killed
	burst(t, []string{r0.URL(), r1.URL(), r2.URL()}, func() {
		r2.Kill(t)               // a relayd node dies without a word (SIGKILL)
		nats.Nodes[1].Shutdown() // and a NATS node goes away
	})
}

// The same burst, while a relayd process that carries one of the three
// NATS nodes (--cluster embedded) is killed with SIGKILL: a NATS server
// dies without a word, with the relayd node in front of it.
func TestKill9OfANodeWithItsNATSServer(t *testing.T) {
	nats, layout := natstest.StartSome(t, 3, 2)
	r2 := relaytest.StartProcess(t, append(nodeArgs(nats, 0)[2:], "--cluster", "embedded", "--cluster-node", "r3", "--nats-name", "n3",
		"--nats-cluster-listen", layout.Listen[2], "--nats-routes", strings.Join(layout.Routes, ","))...)
	r0 := relaytest.Start(t, nodeArgs(nats, 0)...)
	r1 := relaytest.Start(t, nodeArgs(nats, 1)...)
	burst(t, []string{r0.URL(), r1.URL(), r2.URL()}, func() { r2.Kill(t) })
}

// burst has five senders send each of their messages to the same five
// receivers, spread over the nodes at urls, runs midway a third of the way
// through, and checks that every accepted message is in each receiver's
// inbox exactly once.
func burst(t *testing.T, urls []string, midway func()) {
	const senders, receivers, each = 5, 5, 20
	home := func(i int) []string { // node i%3 first, then the others
		return append(slices.Clone(urls[i%3:]), urls[:i%3]...)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*patience)
	defer cancel()
	var to []string
	rcv := make([]*agent, receivers)
	var rwg sync.WaitGroup
	rctx, stopReceivers := context.WithCancel(ctx)
	defer stopReceivers()
	for i := range receivers {
		rcv[i] = newAgent(t, fmt.Sprintf("R%d", i), home(i+1))
		to = append(to, rcv[i].id)
		if !rcv[i].dial(ctx) {
			t.Fatalf("%s could not connect", rcv[i].id)
		}
		rwg.Add(1)
		go func() { defer rwg.Done(); rcv[i].receive(rctx) }()
	}

	var progress sync.WaitGroup
	progress.Add(senders) // each sender, a third of the way through
	var swg sync.WaitGroup
	accepted := make([]map[string]string, senders)
	errs := make([]error, senders)
	for i := range senders {
		s := newAgent(t, fmt.Sprintf("S%d", i), home(i))
		var bodies []string
		for n := range each {
			bodies = append(bodies, fmt.Sprintf("%s #%d", s.id, n))
		}
		swg.Add(1)
		go func() {
			defer swg.Done()
			accepted[i], errs[i] = s.sendAll(ctx, bodies, to, func(n int) {
				if n == each/3 {
					progress.Done()
				}
			})
		}()
	}
	progress.Wait()
	midway()
	swg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	total := 0
	for _, acc := range accepted {
		total += len(acc)
	}
	if total != senders*each {
		t.Fatalf("%d messages accepted, want %d", total, senders*each)
	}
	testkit.Eventually(2*patience, func() bool { // what is missing is told below
		for _, r := range rcv {
			if r.count() < total {
				return false
			}
		}
		return true
	})
	stopReceivers()
	rwg.Wait()
	for _, r := range rcv {
		for _, acc := range accepted {
			for body := range acc {
				switch ids := r.inbox[body]; len(ids) {
				case 1:
				case 0:
					t.Errorf("%s never got %q (accepted)", r.id, body)
				default:
					t.Errorf("%s holds %q %d times, as %v", r.id, body, len(ids), ids)
				}
			}
		}
	}
}
