package server

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// faultyStore is a store whose writes fail while failing is set, as a full
// disk or a read-only file makes them fail: reads keep working. It passes
// the pipelined path through when the store under it has one.
type faultyStore struct {
	store.Store
	failing atomic.Bool
}

var errInjected = fmt.Errorf("injected: no space left on device: %w", store.ErrUnavailable)

func (f *faultyStore) Submit(m store.Message, to []string, maxQueue int, ref *store.SendRef, done func(store.Submitted)) ([]store.Slot, bool) {
	if f.failing.Load() {
		done(store.Submitted{Err: errInjected})
		return nil, false
	}
	return f.Store.Submit(m, to, maxQueue, ref, done)
}

func (f *faultyStore) Touch(ctx context.Context, s store.SessionInfo) error {
	if f.failing.Load() {
		return errInjected
	}
	return f.Store.Touch(ctx, s)
}

func (f *faultyStore) Ack(ctx context.Context, id string, upto uint64) error {
	if f.failing.Load() {
		return errInjected
	}
	return f.Store.Ack(ctx, id, upto)
}

// A store that cannot write answers new sends with store_unavailable, the
// sender's connection stays up, what was stored before is still delivered,
// and once the store writes again the same send goes through with the next
// seq: nothing lost, nothing skipped.
func TestStoreWriteFailureOnTheWire(t *testing.T) {
	for _, kind := range append([]string{"memory"}, durableStores...) {
		t.Run(kind, func(t *testing.T) {
			fs := &faultyStore{Store: store.NewMemory()}
			if kind != "memory" {
				fs.Store = openDurable(t, kind, t.TempDir())
			}
			r := startRelay(t, func(_ *Server, o *hub.Options) { o.Store = fs })
			a, _ := r.connect("A", 0)
			b, _ := r.connect("B", 0)
			a.send(&protocol.Send{Ref: "1", To: protocol.Recipients{"B"}, Body: "m1"})
			expect[*protocol.Accepted](a)
			m1 := expect[*protocol.Message](b)
			b.ws.CloseNow()
			waitFor(t, "B offline", func() bool { return len(r.srv.Hub.Peers()) == 1 })
			a.send(&protocol.Send{Ref: "2", To: protocol.Recipients{"B"}, Body: "m2"})
			if acc := expect[*protocol.Accepted](a); acc.Recipients[0].Status != protocol.StatusQueued {
				t.Fatalf("m2: %+v, want queued", acc.Recipients)
			}

			fs.failing.Store(true) // the disk fills up
			a.send(&protocol.Send{Ref: "3", To: protocol.Recipients{"B"}, Body: "m3"})
			e := expect[*protocol.ErrorFrame](a)
			if e.Code != protocol.CodeStoreUnavailable || e.Ref != "3" || !strings.Contains(e.Message, "nothing was sent") || !strings.Contains(e.Message, "no space left") {
				t.Fatalf("send while the store fails: %+v, want store_unavailable for ref 3 saying nothing was sent and why", e)
			}
			t.Logf("sender sees: %s: %s", e.Code, e.Message)
			a.send(&protocol.Peers{Ref: "p"}) // the connection is still usable
			expect[*protocol.Peers](a)

			// Delivery of what is stored goes on, even though B's
			// session and resume point cannot be written.
			b, _ = r.connect("B", m1.Seq)
			if m := expect[*protocol.Message](b); m.Body != "m2" || m.Seq != m1.Seq+1 {
				t.Fatalf("B got %q seq %d, want m2 seq %d", m.Body, m.Seq, m1.Seq+1)
			}

			fs.failing.Store(false) // space returns: the retry goes through
			a.send(&protocol.Send{Ref: "3", To: protocol.Recipients{"B"}, Body: "m3"})
			if acc := expect[*protocol.Accepted](a); acc.Recipients[0].Status != protocol.StatusDelivered {
				t.Fatalf("m3 after recovery: %+v, want delivered", acc.Recipients)
			}
			if m := expect[*protocol.Message](b); m.Body != "m3" || m.Seq != m1.Seq+2 {
				t.Fatalf("B got %q seq %d, want m3 seq %d (no seq lost to the failure)", m.Body, m.Seq, m1.Seq+2)
			}
			if n := r.srv.Hub.Stats().StoreErrors.Load(); n != 1 {
				t.Errorf("store errors counted: %d, want 1", n)
			}
		})
	}
}

// A send retried after a restart of the relay (its memory of recent refs
// gone) with the same ref and content is answered from the store: the same
// message id, and one message in the recipient's mailbox. The same ref with
// other content is a new message.
func TestRetryAfterRestartAnsweredFromStore(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		dir := t.TempDir()
		st1 := openDurable(t, kind, dir)
		r1 := startRelay(t, func(_ *Server, o *hub.Options) { o.Store = st1 })
		b, _ := r1.connect("B", 0)
		b.ws.CloseNow()
		waitFor(t, "B offline", func() bool { return len(r1.srv.Hub.Peers()) == 0 })
		a, _ := r1.connect("A", 0)
		send := &protocol.Send{Ref: "r-1", To: protocol.Recipients{"B"}, Body: "the fix is in auth.go"}
		a.send(send)
		first := expect[*protocol.Accepted](a)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r1.srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		r1.hts.Close()
		if err := st1.Close(); err != nil {
			t.Fatal(err)
		}

		st2 := openDurable(t, kind, dir) // before startRelay: its goroutines are not a leak
		r2 := startRelay(t, func(_ *Server, o *hub.Options) { o.Store = st2 })
		a, _ = r2.connect("A", 0)
		a.send(send)
		again := expect[*protocol.Accepted](a)
		if again.ID != first.ID || !again.TS.Equal(first.TS) || again.Recipients[0] != (protocol.Outcome{ID: "B", Status: protocol.StatusQueued}) {
			t.Fatalf("retry after restart: %+v, want the first answer %+v", again, first)
		}
		a.send(&protocol.Send{Ref: "r-1", To: protocol.Recipients{"B"}, Body: "another message, same ref"})
		other := expect[*protocol.Accepted](a)
		if other.ID == first.ID {
			t.Fatal("a new message that reuses a ref was taken for a retry")
		}
		b, w := r2.connect("B", 0)
		if w.Backlog != 2 {
			t.Errorf("B's backlog = %d, want 2", w.Backlog)
		}
		for _, want := range []string{first.ID, other.ID} {
			if m := expect[*protocol.Message](b); m.ID != want {
				t.Fatalf("B got %s %q, want %s", m.ID, m.Body, want)
			}
		}
		if f, err := b.read(300 * time.Millisecond); err == nil {
			t.Fatalf("B got a third frame: %+v", f)
		}
	})
}
