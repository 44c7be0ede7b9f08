package link

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/relaytest"
)

func TestParseURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                          DefaultURL,
		"ws://127.0.0.1:9999":       "ws://127.0.0.1:9999/v1/ws",
		"ws://127.0.0.1:9999/":      "ws://127.0.0.1:9999/v1/ws",
		"127.0.0.1:7777":            "ws://127.0.0.1:7777/v1/ws",
		"wss://relay.example/v1/ws": "wss://relay.example/v1/ws",
		"https://relay.example":     "wss://relay.example/v1/ws",
		"ws://[::1]:9999":           "ws://[::1]:9999/v1/ws",
		"ws://h:1/custom":           "ws://h:1/custom",
	} {
		got, err := ParseURL(in)
		if err != nil || got != want {
			t.Errorf("ParseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x", "ws://", "ws://h:0", "ws://h:99999", "ws://u:p@h:1", "ws://h:1/#frag", "ws://h:"} {
		if got, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) = %q, want an error", bad, got)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"ws://127.0.0.1:9999", "h:1", "wss://[::1]:443/x?y=1", "http://a b", "ws://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURL(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
			t.Fatalf("ParseURL(%q) = %q: not ws(s)", s, u)
		}
		again, err := ParseURL(u)
		if err != nil || again != u {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", s, u, again, err)
		}
	})
}

func TestBackoff(t *testing.T) {
	for n := range 20 {
		d := Backoff(n, 250*time.Millisecond, 30*time.Second)
		want := 250 * time.Millisecond << min(n, 7)
		if want > 30*time.Second {
			want = 30 * time.Second
		}
		if d < want/2 || d > want {
			t.Fatalf("attempt %d: %v not in [%v, %v]", n, d, want/2, want)
		}
	}
}

type harness struct {
	l      *Link
	in     *inbox.Inbox
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	got    []string
}

func start(t *testing.T, url, id string, dir string) *harness {
	t.Helper()
	return startURLs(t, []string{url}, id, dir)
}

// startURLs runs a link that fails over between urls.
func startURLs(t *testing.T, urls []string, id string, dir string) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	in, err := inbox.Open(dir, inbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := inbox.OpenOutbox(dir, 0)
	h := &harness{in: in, done: make(chan error, 1)}
	h.l = New(Config{URLs: urls, Hello: protocol.Hello{ClientID: id}, Inbox: in, Outbox: out,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnMessages: func(es []inbox.Entry) {
			h.mu.Lock()
			for _, e := range es {
				h.got = append(h.got, e.Body)
			}
			h.mu.Unlock()
		}})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.l.Run(ctx) }()
	t.Cleanup(func() { h.stop(t); in.Close() })
	return h
}

func (h *harness) stop(t *testing.T) {
	h.cancel()
	select {
	case <-h.done:
		h.done <- nil
	case <-time.After(5 * time.Second):
		t.Error("link did not stop")
	}
}

func (h *harness) bodies() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, what, cond)
}

func TestBacklogResumeNoDuplicates(t *testing.T) {
	r := relaytest.New(t)
	a := start(t, r.URL(), "A", "")
	waitFor(t, "connected", func() bool { return a.l.Status().State == StateConnected })
	r.Inject("X", "A", "one")
	waitFor(t, "one", func() bool { return len(a.bodies()) == 1 })

	r.SetDown(true) // relay goes away; mail waits in the mailbox
	waitFor(t, "reconnecting", func() bool { return a.l.Status().State == StateReconnecting })
	r.Inject("X", "A", "two")
	r.Inject("X", "A", "three")
	r.SetDown(false)
	waitFor(t, "backlog", func() bool { return len(a.bodies()) == 3 })
	waitFor(t, "reconnected", func() bool { return a.l.Status().Reconnects == 1 })
	r.Kick("A", protocol.CloseGoingAway)
	waitFor(t, "reconnected twice", func() bool { return a.l.Status().Reconnects == 2 })
	time.Sleep(50 * time.Millisecond) // the test is that nothing more comes: a resent duplicate would show now
	if got := a.bodies(); strings.Join(got, ",") != "one,two,three" {
		t.Fatalf("got %v", got)
	}
	if a.in.ResumeAfter() != 3 {
		t.Fatalf("max seq %d", a.in.ResumeAfter())
	}
}

func TestReplacedStopsForGood(t *testing.T) {
	r := relaytest.New(t)
	a := start(t, r.URL(), "SAME", "")
	waitFor(t, "a connected", func() bool { return a.l.Status().State == StateConnected })
	b := start(t, r.URL(), "SAME", "")
	waitFor(t, "a stopped", func() bool { return a.l.Status().State == StateStopped })
	if !strings.Contains(a.l.Status().StopReason, "replaced") {
		t.Fatalf("reason: %q", a.l.Status().StopReason)
	}
	time.Sleep(300 * time.Millisecond) // longer than the max backoff: no flapping
	if b.l.Status().State != StateConnected || b.l.Status().Reconnects != 0 {
		t.Fatalf("b: %+v", b.l.Status())
	}
	if res := a.l.Send(context.Background(), protocol.Send{To: protocol.Recipients{"X"}, Body: "x"}); res.Err == nil {
		t.Fatalf("stopped link sent: %+v", res)
	}
}

func TestOfflineSendQueuedThenFlushedInOrder(t *testing.T) {
	r := relaytest.New(t)
	b := start(t, r.URL(), "B", "")
	waitFor(t, "b", func() bool { return b.l.Status().State == StateConnected })
	r.SetDown(true)
	a := start(t, r.URL(), "A", "")
	ctx := context.Background()
	for _, body := range []string{"1", "2", "3"} {
		res := a.l.Send(ctx, protocol.Send{To: protocol.Recipients{"B"}, Body: body})
		if !res.Queued {
			t.Fatalf("send %s while down: %+v", body, res)
		}
	}
	if a.l.Status().Outbox != 3 {
		t.Fatalf("outbox %d", a.l.Status().Outbox)
	}
	r.SetDown(false)
	waitFor(t, "flushed", func() bool { return len(b.bodies()) == 3 })
	if got := strings.Join(b.bodies(), ","); got != "1,2,3" {
		t.Fatalf("order: %s", got)
	}
	waitFor(t, "outbox empty", func() bool { return a.l.Status().Outbox == 0 })
	res := a.l.Send(ctx, protocol.Send{To: protocol.Recipients{"B"}, Body: "4"})
	if res.Accepted == nil || res.Accepted.Recipients[0].Status != protocol.StatusDelivered {
		t.Fatalf("online send: %+v", res)
	}
}

// A send whose connection drops after the relay stored it, before the
// accepted came back, is resent with its ref after the reconnect; the relay
// answers with the original accepted and the peer has it once.
func TestDroppedAcceptedResentOnce(t *testing.T) {
	r := relaytest.New(t)
	b := start(t, r.URL(), "B", "")
	a := start(t, r.URL(), "A", "")
	waitFor(t, "both connected", func() bool {
		return a.l.Status().State == StateConnected && b.l.Status().State == StateConnected
	})
	r.DropNextAccepted()
	res := a.l.Send(context.Background(), protocol.Send{To: protocol.Recipients{"B"}, Body: "once"})
	// Either the send is reported queued (the connection dropped), or the
	// link was back before the send gave up waiting and the resend's
	// answer — the original accepted — came back to it at once.
	switch {
	case res.Queued && strings.Contains(res.Reason, "dropped"):
	case res.Accepted != nil && res.Err == nil:
	default:
		t.Fatalf("send over a dropped connection: %+v", res)
	}
	waitFor(t, "outbox flushed", func() bool { return a.l.Status().Outbox == 0 && a.l.Status().Reconnects == 1 })
	time.Sleep(50 * time.Millisecond) // the test is that nothing more comes: a second resend would show now
	if n := r.Delivered("B", "once"); n != 1 {
		t.Fatalf("relay holds %d copies, want 1", n)
	}
	if got := b.bodies(); len(got) != 1 {
		t.Fatalf("B got %v", got)
	}
}

func TestWaitCaughtUpAfterBacklog(t *testing.T) {
	r := relaytest.New(t)
	dir := t.TempDir()
	a := start(t, r.URL(), "A", dir)
	waitFor(t, "connected", func() bool { return a.l.Status().State == StateConnected })
	a.stop(t)
	for i := range 50 {
		r.Inject("X", "A", fmt.Sprint(i))
	}
	a2 := start(t, r.URL(), "A", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a2.l.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if total, _, _ := a2.in.Counts(); total != 50 {
		t.Fatalf("caught up with %d of 50 messages in the inbox", total)
	}
}

func TestNoTakeoverRefusedWithCode(t *testing.T) {
	r := relaytest.New(t)
	a := start(t, r.URL(), "SAME", "")
	waitFor(t, "a connected", func() bool { return a.l.Status().State == StateConnected })
	in, _ := inbox.Open(t.TempDir(), inbox.Options{})
	defer in.Close()
	l := New(Config{URL: r.URL(), Hello: protocol.Hello{ClientID: "SAME", NoTakeover: true, Quiet: true}, Inbox: in})
	err := l.Run(context.Background())
	st := l.Status()
	if err == nil || st.State != StateStopped || st.StopCode != protocol.CloseIDInUse || !strings.Contains(st.StopReason, "id_in_use") {
		t.Fatalf("no_takeover: %v %+v", err, st)
	}
	if a.l.Status().State != StateConnected || a.l.Status().Reconnects != 0 {
		t.Fatalf("the holder was disturbed: %+v", a.l.Status())
	}
}

// A message read is reported to the relay once per connection, however
// many callers report it (relay_receive and the watcher both do), and
// ReportRead's confirmation comes after the report even when another
// caller made it; a new connection reports again.
func TestReadReportedOncePerConnection(t *testing.T) {
	r := relaytest.New(t)
	a := start(t, r.URL(), "A", "")
	waitFor(t, "connected", func() bool { return a.l.Status().State == StateConnected })
	ctx := context.Background()
	if err := a.l.SendRead(ctx, []string{"m1", "m2"}); err != nil {
		t.Fatal(err)
	}
	// report is relay_receive's way: report, then wait for the relay's
	// confirmation.
	report := func(ids ...string) {
		t.Helper()
		recorded, err := a.l.ReportRead(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if err := recorded(ctx); err != nil {
			t.Fatal(err)
		}
	}
	report("m2", "m1", "m3")
	if got := strings.Join(r.ReadsReported("A"), ","); got != "m1,m2,m3" {
		t.Fatalf("reported %s, want m1,m2,m3 once each before the confirmation", got)
	}
	r.Kick("A", protocol.CloseGoingAway)
	waitFor(t, "reconnected", func() bool { return a.l.Status().Reconnects == 1 && a.l.Status().State == StateConnected })
	report("m1")
	if got := strings.Join(r.ReadsReported("A"), ","); got != "m1,m2,m3,m1" {
		t.Fatalf("reported %s, want m1 again on the new connection", got)
	}
}
