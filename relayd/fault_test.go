package main

// The fault suite: real relayd processes (this test binary re-executed as
// relayd, see TestMain) with their durable store (SQLite, and the journal
// for the kill -9 tests), killed with SIGKILL while
// real WebSocket clients send and receive, then restarted on the same data
// directory. What a client saw accepted must reach every recipient exactly
// once (after deduplication by message id, as relay-mcp does it) and in each
// sender's order.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/daemon"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// startRelayd runs relayd as a process (relaytest.StartProcess) with its
// default store (--store auto: the journal in a new dataDir) in dataDir on
// addr ("127.0.0.1:0" for any port) and waits until it listens. Its log is
// shown if the test fails.
func startRelayd(t *testing.T, dataDir, addr string, extra ...string) *relaytest.Relay {
	t.Helper()
	// No rate limits: a burst of thousands is the point here, not a loop
	// between agents.
	return relaytest.StartProcess(t, append([]string{"--listen", addr, "--data-dir", dataDir,
		"--client-limit", "0", "--pair-limit", "0", "--global-limit", "0"}, extra...)...)
}

// startFunc starts relayd on dataDir and addr with one of the durable
// stores: startRelayd with --store journal or --store sqlite.
type startFunc func(t *testing.T, dataDir, addr string, extra ...string) *relaytest.Relay

// forEachStore runs a kill -9 test on each durable store, and checks that
// each left its own file in the data directory and not the other's.
func forEachStore(t *testing.T, test func(*testing.T, startFunc)) {
	for _, c := range []struct{ kind, file, other string }{
		{"journal", store.JournalFile, store.FileName},
		{"sqlite", store.FileName, store.JournalFile},
	} {
		t.Run(c.kind, func(t *testing.T) {
			test(t, func(t *testing.T, dataDir, addr string, extra ...string) *relaytest.Relay {
				t.Cleanup(func() {
					if _, err := os.Stat(filepath.Join(dataDir, c.file)); err != nil {
						t.Errorf("relayd --store %s left no %s in its data dir: %v", c.kind, c.file, err)
					}
					if _, err := os.Stat(filepath.Join(dataDir, c.other)); err == nil {
						t.Errorf("relayd --store %s made %s", c.kind, c.other)
					}
				})
				return startRelayd(t, dataDir, addr, append([]string{"--store", c.kind}, extra...)...)
			})
		})
	}
}

// wsClient is a protocol v1 client that reads in the background.
type wsClient struct {
	ws     *websocket.Conn
	frames chan protocol.Frame // closed when the connection ends
}

func dialClient(ctx context.Context, addr, id string, resumeAfter uint64) (*wsClient, *protocol.Welcome, error) {
	return dialClientAs(ctx, addr, id, resumeAfter, false)
}

// known connects as each id once and leaves: the relay knows them and
// queues their mail.
func known(t *testing.T, ctx context.Context, addr string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		c, _, err := dialClient(ctx, addr, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.close()
	}
}

// dialClientAs is dialClient, saying hello with provisional when asked:
// messages then arrive before their commit, confirmed by the relay's acks.
func dialClientAs(ctx context.Context, addr, id string, resumeAfter uint64, provisional bool) (*wsClient, *protocol.Welcome, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, "ws://"+addr+"/v1/ws", nil)
	if err != nil {
		return nil, nil, err
	}
	ws.SetReadLimit(int64(protocol.DefaultMaxFrameBytes))
	c := &wsClient{ws: ws, frames: make(chan protocol.Frame, 512)}
	if err := c.send(dctx, &protocol.Hello{Proto: protocol.Version, ClientID: id, Agent: "fault-test", Quiet: true, ResumeAfter: resumeAfter, Provisional: provisional}); err != nil {
		ws.CloseNow()
		return nil, nil, err
	}
	_, b, err := ws.Read(dctx)
	if err != nil {
		ws.CloseNow()
		return nil, nil, err
	}
	f, err := protocol.Decode(b)
	if err != nil {
		ws.CloseNow()
		return nil, nil, err
	}
	w, ok := f.(*protocol.Welcome)
	if !ok {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("%s: got %s before welcome: %+v", id, f.Type(), f)
	}
	go func() {
		defer close(c.frames)
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			f, err := protocol.Decode(b)
			if err != nil {
				continue
			}
			select {
			case c.frames <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	return c, w, nil
}

// dialRetry dials until the relay answers (it may be restarting) or ctx ends.
func dialRetry(ctx context.Context, addr, id string, resumeAfter func() uint64) (*wsClient, *protocol.Welcome, error) {
	return dialRetryAs(ctx, addr, id, resumeAfter, false)
}

func dialRetryAs(ctx context.Context, addr, id string, resumeAfter func() uint64, provisional bool) (*wsClient, *protocol.Welcome, error) {
	for {
		c, w, err := dialClientAs(ctx, addr, id, resumeAfter(), provisional)
		if err == nil {
			return c, w, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("%s: relay not back: %v (%w)", id, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *wsClient) send(ctx context.Context, f protocol.Frame) error {
	b, err := protocol.Encode(f)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.ws.Write(wctx, websocket.MessageText, b)
}

func (c *wsClient) close() { c.ws.CloseNow() }

// burstSender sends n messages to the same recipients, keeping up to window
// unanswered, and resends what was not accepted after a dropped connection
// with the same ref, as relay-mcp's outbox does.
type burstSender struct {
	id       string
	to       []string
	n        int
	window   int
	accepted []string     // message id per index once accepted
	count    atomic.Int64 // accepted so far
	resent   atomic.Int64 // sends repeated after a dropped connection
}

func bodyOf(sender string, k int) string {
	return fmt.Sprintf("%s-%05d %s", sender, k, strings.Repeat("x", 80))
}

func refOf(sender string, k int) string { return fmt.Sprintf("%s-%05d", sender, k) }

func (s *burstSender) run(ctx context.Context, addr string) error {
	s.accepted = make([]string, s.n)
	next := 0 // the first index never sent
	zero := func() uint64 { return 0 }
	for s.count.Load() < int64(s.n) {
		c, _, err := dialRetry(ctx, addr, s.id, zero)
		if err != nil {
			return err
		}
		inflight := map[int]bool{}
		sendK := func(k int) error {
			inflight[k] = true
			return c.send(ctx, &protocol.Send{Ref: refOf(s.id, k), To: s.to, Body: bodyOf(s.id, k)})
		}
		var werr error
		for k := 0; k < next && werr == nil; k++ { // resend, in order, what was never answered
			if s.accepted[k] == "" {
				werr = sendK(k)
				s.resent.Add(1)
			}
		}
	conn:
		for werr == nil && s.count.Load() < int64(s.n) {
			for len(inflight) < s.window && next < s.n && werr == nil {
				werr = sendK(next)
				next++
			}
			f, ok := <-c.frames
			if !ok {
				break conn
			}
			switch f := f.(type) {
			case *protocol.Accepted:
				k, err := strconv.Atoi(strings.TrimPrefix(f.Ref, s.id+"-"))
				if err != nil || k < 0 || k >= s.n {
					c.close()
					return fmt.Errorf("%s: accepted for a ref it never sent: %+v", s.id, f)
				}
				delete(inflight, k)
				if s.accepted[k] == "" {
					s.accepted[k] = f.ID
					s.count.Add(1)
				} else if s.accepted[k] != f.ID {
					c.close()
					return fmt.Errorf("%s: ref %s accepted twice, as %s and %s: a retry was stored again", s.id, f.Ref, s.accepted[k], f.ID)
				}
				for _, o := range f.Recipients {
					if o.Status != protocol.StatusDelivered && o.Status != protocol.StatusQueued {
						c.close()
						return fmt.Errorf("%s: %s was %s for %s", s.id, f.Ref, o.Status, o.ID)
					}
				}
			case *protocol.ErrorFrame:
				c.close()
				return fmt.Errorf("%s: relay refused a send: %s: %s", s.id, f.Code, f.Message)
			}
		}
		c.close()
	}
	return nil
}

// inbox is what a receiving agent ends up with: messages deduplicated by id,
// checked for duplicates by content and for each sender's order.
type inbox struct {
	mu       sync.Mutex
	ids      map[string]bool
	last     map[string]int // sender → index of its newest message seen
	got      int
	problems []string
	seq      uint64 // highest seq held: the resume point
	lastSeq  uint64 // of the newest message taken, for reports
	lastID   string

	// A provisional receiver holds messages apart until the relay's ack
	// covers them and drops the rest when the connection ends, as
	// relay-mcp does.
	provisional bool
	unconfirmed int             // provisional messages held apart now
	dropped     map[string]bool // ids of provisional messages dropped unconfirmed
}

func newInbox() *inbox {
	return &inbox{ids: map[string]bool{}, last: map[string]int{}, dropped: map[string]bool{}}
}

func newProvisionalInbox() *inbox {
	in := newInbox()
	in.provisional = true
	return in
}

func (in *inbox) setUnconfirmed(n int) {
	in.mu.Lock()
	in.unconfirmed = n
	in.mu.Unlock()
}

func (in *inbox) drop(held []*protocol.Message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range held {
		in.dropped[m.ID] = true
	}
	in.unconfirmed = 0
}

func (in *inbox) add(m *protocol.Message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.seq = max(in.seq, m.Seq)
	if in.ids[m.ID] {
		return // redelivered after a resume: the client drops it
	}
	in.ids[m.ID] = true
	sender, idx, ok := strings.Cut(strings.Fields(m.Body)[0], "-")
	k, err := strconv.Atoi(idx)
	if !ok || err != nil || sender != m.From {
		in.problems = append(in.problems, fmt.Sprintf("unexpected message %s from %s: %.20q", m.ID, m.From, m.Body))
		return
	}
	last, seen := in.last[sender]
	switch {
	case seen && k == last:
		in.problems = append(in.problems, fmt.Sprintf("%s-%05d delivered twice (second id %s)", sender, k, m.ID))
	case seen && k < last:
		in.problems = append(in.problems, fmt.Sprintf("%s-%05d (seq %d id %s) arrived after %s-%05d (seq %d id %s)", sender, k, m.Seq, m.ID, sender, last, in.lastSeq, in.lastID))
	default:
		in.last[sender] = k
		in.lastSeq, in.lastID = m.Seq, m.ID
		in.got++
	}
}

func (in *inbox) resumePoint() uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.seq
}

func (in *inbox) count() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.got
}

// receive reads messages into the inbox, acking every ackEvery, until ctx
// ends or (when dropAfter > 0) dropAfter messages arrived on this
// connection. It reports whether the connection ended on its own.
func receive(ctx context.Context, c *wsClient, in *inbox, ackEvery, dropAfter int) (lost bool) {
	n := 0
	var held []*protocol.Message // provisional, not confirmed yet
	defer func() { in.drop(held) }()
	take := func(m *protocol.Message) bool {
		in.add(m)
		n++
		if ackEvery > 0 && n%ackEvery == 0 {
			c.send(ctx, &protocol.Ack{Upto: m.Seq})
		}
		return dropAfter > 0 && n >= dropAfter
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case f, ok := <-c.frames:
			if !ok {
				return true
			}
			switch f := f.(type) {
			case *protocol.Message:
				if f.Provisional {
					if !in.provisional {
						in.mu.Lock()
						in.problems = append(in.problems, fmt.Sprintf("message %s marked provisional to a client that did not ask", f.ID))
						in.mu.Unlock()
					}
					held = append(held, f)
					in.setUnconfirmed(len(held))
					continue
				}
				// Committed: so is everything before it.
				for len(held) > 0 && held[0].Seq < f.Seq {
					m := held[0]
					held = held[1:]
					in.mu.Lock()
					in.problems = append(in.problems, fmt.Sprintf("message seq %d arrived committed before an ack confirmed seq %d", f.Seq, m.Seq))
					in.mu.Unlock()
					if take(m) {
						return false
					}
				}
				in.setUnconfirmed(len(held))
				if take(f) {
					return false
				}
			case *protocol.Ack: // from the relay: committed up to f.Upto
				for len(held) > 0 && held[0].Seq <= f.Upto {
					m := held[0]
					held = held[1:]
					if take(m) {
						in.setUnconfirmed(len(held))
						return false
					}
				}
				in.setUnconfirmed(len(held))
			}
		}
	}
}

// receiveLoop is an agent that stays online, reconnecting with resume_after
// whenever the connection ends, and (with dropEvery > 0) hangs up on its own
// every dropEvery messages, as a flaky network would.
func receiveLoop(ctx context.Context, addr, id string, in *inbox, dropEvery int) error {
	for ctx.Err() == nil {
		c, _, err := dialRetryAs(ctx, addr, id, in.resumePoint, in.provisional)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		receive(ctx, c, in, 128, dropEvery)
		c.close()
	}
	return nil
}

// TestKill9DuringBurst kills relayd with SIGKILL in the middle of 10 000
// messages from 5 senders, each to the same 5 receivers, and restarts it
// on the same data directory. Receivers: two stay online, one hangs up and
// resumes every few hundred messages, one is offline until two thirds of
// the burst are accepted (after the restart) and one goes offline at the
// crash and returns at the same time.
func TestKill9DuringBurst(t *testing.T) { forEachStore(t, testKill9DuringBurst) }

func testKill9DuringBurst(t *testing.T, startRelayd startFunc) {
	perSender := 2000
	if testing.Short() {
		perSender = 200
	}
	const senders, receivers, window = 5, 5, 64
	data := t.TempDir()
	p := startRelayd(t, data, "127.0.0.1:0")
	addr := p.Addr

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var rids []string
	for i := range receivers {
		rids = append(rids, fmt.Sprintf("R%d", i))
	}
	known(t, ctx, addr, rids...)

	// R0, R2 and R4 take provisional messages (as relay-mcp does), R1
	// and R3 only committed ones.
	inboxes := make([]*inbox, receivers)
	for i := range inboxes {
		inboxes[i] = newInbox()
		if i%2 == 0 {
			inboxes[i] = newProvisionalInbox()
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, senders+receivers)
	goRun := func(ctx context.Context, f func(ctx context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errs <- err
			}
		}()
	}
	recvCtx, stopReceivers := context.WithCancel(ctx)
	defer stopReceivers()
	// R0, R1 online; R2 online but hangs up every 700 messages.
	for i, drop := range []int{0, 0, 700} {
		goRun(recvCtx, func(ctx context.Context) error { return receiveLoop(ctx, addr, rids[i], inboxes[i], drop) })
	}
	// R4 online until the crash, then away for a while.
	r4ctx, r4stop := context.WithCancel(recvCtx)
	goRun(r4ctx, func(ctx context.Context) error { return receiveLoop(ctx, addr, rids[4], inboxes[4], 0) })

	ss := make([]*burstSender, senders)
	for i := range ss {
		ss[i] = &burstSender{id: fmt.Sprintf("S%d", i), to: rids, n: perSender, window: window}
		goRun(ctx, func(ctx context.Context) error { return ss[i].run(ctx, addr) })
	}
	accepted := func() int64 {
		var n int64
		for _, s := range ss {
			n += s.count.Load()
		}
		return n
	}
	total := int64(senders * perSender)
	// A client that gives up fails the test at once, not at the deadline.
	waitUntil := func(t *testing.T, ctx context.Context, what string, cond func() bool) {
		t.Helper()
		waitUntil(t, ctx, what, func() bool {
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			return cond()
		})
	}
	waitUntil(t, ctx, "a third of the burst accepted", func() bool { return accepted() >= total/3 })
	p.Kill(t)
	r4stop()
	t.Logf("killed relayd with SIGKILL after %d of %d messages were accepted", accepted(), total)

	startRelayd(t, data, addr)
	waitUntil(t, ctx, "more accepted after the restart", func() bool { return accepted() >= total*2/3 })
	// R3, offline all along, and R4 come back.
	goRun(recvCtx, func(ctx context.Context) error { return receiveLoop(ctx, addr, rids[3], inboxes[3], 0) })
	goRun(recvCtx, func(ctx context.Context) error { return receiveLoop(ctx, addr, rids[4], inboxes[4], 0) })

	waitUntil(t, ctx, "every send accepted", func() bool { return accepted() == total })
	var resent int64
	for _, s := range ss {
		resent += s.resent.Load()
	}
	t.Logf("senders resent %d unanswered sends with their refs after the restart", resent)
	waitUntil(t, ctx, "every receiver holding the whole burst", func() bool {
		for _, in := range inboxes {
			if in.count() < int(total) {
				return false
			}
		}
		return true
	})
	time.Sleep(200 * time.Millisecond) // nothing must happen now: a stray duplicate would show itself in this interval
	stopReceivers()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, in := range inboxes {
		in.mu.Lock()
		if len(in.problems) > 0 {
			t.Errorf("%s: %d problems, first: %s", rids[i], len(in.problems), strings.Join(in.problems[:min(5, len(in.problems))], "; "))
		}
		if in.got != int(total) {
			t.Errorf("%s holds %d distinct messages, want %d", rids[i], in.got, total)
		}
		for _, s := range ss {
			if in.last[s.id] != perSender-1 {
				t.Errorf("%s: last from %s is #%d, want #%d", rids[i], s.id, in.last[s.id], perSender-1)
			}
		}
		in.mu.Unlock()
	}
}

// TestKill9BetweenHandOffAndCommit kills relayd while a provisional
// receiver holds a message the relay handed it before committing it, a few
// times over. The receiver drops what was not confirmed when the connection
// ends; the sender, which got no accepted for a message lost in the crash,
// sends it again with the same ref, and the relay stores it (a new id) or,
// if it was committed after all, answers with the first id. Either way the
// receiver ends with every message exactly once, in order, and its resume
// point never passes a seq the relay did not confirm (a skipped message
// would show as missing).
func TestKill9BetweenHandOffAndCommit(t *testing.T) {
	forEachStore(t, testKill9BetweenHandOffAndCommit)
}

func testKill9BetweenHandOffAndCommit(t *testing.T, startRelayd startFunc) {
	n := 3000
	if testing.Short() {
		n = 600
	}
	// The journal store writes a send a few microseconds after it hands
	// it to a provisional reader: too short for a kill to fall between
	// the two but by luck. Each write waits 2 ms here (fault injection;
	// SQLite does not read it, its commit is slow enough on its own).
	t.Setenv(daemon.FaultJournalWriteDelayEnv, "2ms")
	data := t.TempDir()
	p := startRelayd(t, data, "127.0.0.1:0")
	addr := p.Addr
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	known(t, ctx, addr, "B")
	in := newProvisionalInbox()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := receiveLoop(recvCtx, addr, "B", in, 0); err != nil {
			errs <- err
		}
	}()
	s := &burstSender{id: "S", to: []string{"B"}, n: n, window: 64}
	go func() {
		defer wg.Done()
		if err := s.run(ctx, addr); err != nil {
			errs <- err
		}
	}()
	check := func() {
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
	}
	// Three kills, and more (up to eight) until one falls between a
	// hand-off and its commit.
	const kills, maxKills = 3, 8
	dropped := func() int {
		in.mu.Lock()
		defer in.mu.Unlock()
		return len(in.dropped)
	}
	for k := 0; k < maxKills && (k < kills || dropped() == 0); k++ {
		waitUntil(t, ctx, "more sends accepted", func() bool { check(); return s.count.Load() >= int64((k+1)*n/(maxKills+1)) })
		// Kill the moment B holds an unconfirmed message.
		deadline := time.Now().Add(10 * time.Second)
		for {
			in.mu.Lock()
			held := in.unconfirmed
			in.mu.Unlock()
			if held > 0 || time.Now().After(deadline) {
				p.Kill(t)
				t.Logf("kill %d: relayd killed with SIGKILL while B held %d unconfirmed messages, %d of %d accepted", k+1, held, s.count.Load(), n)
				break
			}
			runtime.Gosched()
		}
		p = startRelayd(t, data, addr)
	}
	waitUntil(t, ctx, "every send accepted", func() bool { check(); return s.count.Load() == int64(n) })
	if !testkit.Eventually(30*time.Second, func() bool { check(); return in.count() >= n }) {
		in.mu.Lock()
		t.Logf("B: got %d, last #%d, seq %d, unconfirmed %d, problems %v", in.got, in.last["S"], in.seq, in.unconfirmed, in.problems[:min(5, len(in.problems))])
		in.mu.Unlock()
		t.FailNow()
	}
	time.Sleep(200 * time.Millisecond) // nothing must happen now: a stray duplicate would show itself in this interval
	stopRecv()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.problems) > 0 {
		t.Errorf("B: %d problems, first: %s", len(in.problems), strings.Join(in.problems[:min(5, len(in.problems))], "; "))
	}
	if in.got != n || in.last["S"] != n-1 {
		t.Errorf("B holds %d distinct messages, the last #%d; want %d, the last #%d", in.got, in.last["S"], n, n-1)
	}
	lost := 0 // handed off, never committed: its retry is what B holds
	for id := range in.dropped {
		if !in.ids[id] {
			lost++
		}
	}
	t.Logf("B dropped %d provisional messages at connection ends; %d of them were lost in a crash and reached B once, through the sender's retry; the sender resent %d", len(in.dropped), lost, s.resent.Load())
	if len(in.dropped) == 0 {
		t.Error("no crash fell between a hand-off and its commit: the test did not test it")
	}
}

// TestKill9DuringResume kills relayd while a receiver is part way through a
// backlog it is resuming; after the restart it resumes from what it holds
// and ends with every message once, in order.
func TestKill9DuringResume(t *testing.T) { forEachStore(t, testKill9DuringResume) }

func testKill9DuringResume(t *testing.T, startRelayd startFunc) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	data := t.TempDir()
	p := startRelayd(t, data, "127.0.0.1:0")
	addr := p.Addr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	known(t, ctx, addr, "AWAY")
	s := &burstSender{id: "S", to: []string{"AWAY"}, n: n, window: 64}
	if err := s.run(ctx, addr); err != nil {
		t.Fatal(err)
	}

	in := newInbox()
	c, w, err := dialClient(ctx, addr, "AWAY", 0)
	if err != nil {
		t.Fatal(err)
	}
	if w.Backlog != n && w.Backlog != min(n, 256) { // the backlog may be announced one pull at a time
		t.Logf("welcome.backlog = %d", w.Backlog)
	}
	receive(ctx, c, in, 100, n/3) // a third read, most of it acked
	p.Kill(t)
	c.close()
	held := in.count()
	if held >= n {
		t.Fatalf("read %d of %d before the crash; the test needs the crash mid-backlog", held, n)
	}
	t.Logf("killed relayd with %d of %d backlog messages read (resume point seq %d)", held, n, in.resumePoint())

	startRelayd(t, data, addr)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- receiveLoop(rctx, addr, "AWAY", in, 0) }()
	waitUntil(t, ctx, "the whole backlog", func() bool { return in.count() >= n })
	time.Sleep(200 * time.Millisecond) // nothing must happen now: a stray duplicate would show itself in this interval
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.problems) > 0 || in.got != n || in.last["S"] != n-1 {
		t.Fatalf("got %d distinct (last #%d), want %d; problems: %v", in.got, in.last["S"], n, in.problems[:min(5, len(in.problems))])
	}
}

// A data directory relayd cannot write is a clear startup error that names
// the directory and the fix, not a crash and not a relay that takes
// messages it cannot keep.
func TestReadOnlyDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 { // root writes through permission bits
		if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
			t.Skipf("cannot make %s read-only for root (chattr +i: %v %s)", dir, err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
	}
	out := refusedStart(t, dir, "a read-only data dir")
	for _, want := range []string{dir, "not writable", "--data-dir"} {
		if !strings.Contains(out, want) {
			t.Errorf("error does not mention %q", want)
		}
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "relayd listening") {
		t.Errorf("relayd should refuse to start cleanly")
	}
}

// refusedStart runs relayd on the data dir, which it must refuse: it must
// exit 1 on its own. It returns what relayd said.
func refusedStart(t *testing.T, dir, what string) string {
	t.Helper()
	cmd := relaytest.Command("--listen", "127.0.0.1:0", "--data-dir", dir)
	var logs testkit.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("relayd kept running on %s:\n%s", what, logs.String())
	}
	out := logs.String()
	t.Logf("relayd said:\n%s", out)
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	return out
}

// A SQLite store file that is not one stops relayd at start with the
// file's path and what to do, not a panic and not a relay that answers
// without its mail.
func TestCorruptStoreFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, store.FileName)
	junk := bytes.Repeat([]byte("not a database "), 4096)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	out := refusedStart(t, dir, "a corrupt store")
	for _, want := range []string{path, "move it aside"} {
		if !strings.Contains(out, want) {
			t.Errorf("error does not mention %q", want)
		}
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "relayd listening") {
		t.Errorf("relayd should refuse to start cleanly")
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, junk) {
		t.Error("relayd changed the corrupt file; it must leave it for the user to inspect")
	}
}

// A journal whose records stop being records — what a power cut in the
// middle of a write leaves at its end, here a whole file of junk — opens
// with what comes before (nothing here), and the bytes it could not read
// are kept beside it, unchanged, with the log saying where: relayd serves,
// and destroys nothing. (A damaged record with whole records after it
// stops relayd instead: TestJournalDamaged.)
func TestJunkJournalKeptAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, store.JournalFile)
	junk := bytes.Repeat([]byte("not a journal "), 4096)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startRelayd(t, dir, "127.0.0.1:0")
	asides, _ := filepath.Glob(path + ".torn-*")
	if len(asides) != 1 {
		t.Fatalf("%d files beside the journal keep what relayd cut off, want 1; relayd said:\n%s", len(asides), p.Logs())
	}
	if b, _ := os.ReadFile(asides[0]); !bytes.Equal(b, junk) {
		t.Errorf("%s does not hold the journal's bytes unchanged", asides[0])
	}
	if logs := p.Logs(); !strings.Contains(logs, "torn record") || !strings.Contains(logs, asides[0]) || !strings.Contains(logs, "store=journal") {
		t.Errorf("relayd's log does not say what it cut off and where it kept it:\n%s", logs)
	}
}

// waitUntil polls cond until it holds, failing t at ctx's deadline (or
// after a minute).
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	testkit.WaitFor(t, time.Until(deadline), what, cond)
}

// --max-queue and --retention hold across kill -9: a full mailbox refuses
// the next message at once ("full", never silently dropped), what it held
// survives the crash, and retention later drops what nobody read in time,
// saying so in the log.
func TestLimitsAcrossKill9(t *testing.T) {
	data := t.TempDir()
	p := startRelayd(t, data, "127.0.0.1:0", "--max-queue", "3")
	addr := p.Addr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	known(t, ctx, addr, "B")
	a, _, err := dialClient(ctx, addr, "A", 0)
	if err != nil {
		t.Fatal(err)
	}
	sendOne := func(a *wsClient, k int) string {
		t.Helper()
		if err := a.send(ctx, &protocol.Send{Ref: refOf("A", k), To: protocol.Recipients{"B"}, Body: bodyOf("A", k)}); err != nil {
			t.Fatal(err)
		}
		for f := range a.frames {
			if acc, ok := f.(*protocol.Accepted); ok {
				return acc.Recipients[0].Status
			}
			t.Fatalf("got %+v, want accepted", f)
		}
		t.Fatal("connection lost")
		return ""
	}
	var got []string
	for k := range 4 {
		got = append(got, sendOne(a, k))
	}
	// B's hang-up may not have reached the relay yet: delivered or queued,
	// it is stored either way.
	stored := strings.NewReplacer("delivered", "stored", "queued", "stored").Replace(strings.Join(got, ","))
	if stored != "stored,stored,stored,full" {
		t.Fatalf("outcomes %v, want three stored then full", got)
	}
	p.Kill(t)
	a.close()

	// Retention long enough for the restart and B's resume on a loaded
	// machine (at 2 s the three messages were sometimes expired before B
	// came back), short enough to watch it drop the next one.
	const retention = 6 * time.Second
	p = startRelayd(t, data, addr, "--max-queue", "3", "--retention", retention.String())
	in := newInbox()
	b, w, err := dialClient(ctx, addr, "B", 0)
	if err != nil {
		t.Fatal(err)
	}
	if w.Backlog != 3 {
		t.Errorf("backlog after the restart = %d, want 3", w.Backlog)
	}
	rctx, stop := context.WithTimeout(ctx, 10*time.Second)
	receive(rctx, b, in, 3, 3)
	stop()
	b.close()
	if in.got != 3 || in.last["A"] != 2 || len(in.problems) > 0 {
		t.Fatalf("B read %d (last #%d, problems %v), want #0..#2", in.got, in.last["A"], in.problems)
	}

	a, _, err = dialClient(ctx, addr, "A", 0)
	if err != nil {
		t.Fatal(err)
	}
	// B's acks are written in the background (no client waits for the
	// disk, and a hello no longer waits for the writes before it): the
	// room they make is there once they are.
	sent := time.Now()
	k := 4
	waitUntil(t, ctx, "room in B's mailbox once its acks are written", func() bool {
		if sendOne(a, k) != protocol.StatusFull {
			return true
		}
		k++
		return false
	})
	// B looks in now and then, reading nothing, until its mail is gone.
	waitUntil(t, ctx, "retention to drop the unread message", func() bool {
		b, w, err = dialClient(ctx, addr, "B", in.resumePoint())
		if err != nil {
			t.Fatal(err)
		}
		if w.Backlog == 0 {
			return true
		}
		b.close()
		time.Sleep(200 * time.Millisecond) // a pause between reconnects, so the wait does not churn the relay
		return false
	})
	defer b.close()
	if age := time.Since(sent); age < retention {
		t.Errorf("dropped %v after it was sent, before its retention of %s", age, retention)
	}
	if !strings.Contains(p.Logs(), "retention: dropped expired messages") {
		t.Error("relayd did not log what retention dropped")
	}
	select {
	case f := <-b.frames:
		t.Errorf("got %+v after retention dropped everything", f)
	case <-time.After(300 * time.Millisecond):
	}
}
