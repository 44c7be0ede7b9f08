package server

import (
	"context"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// heldReads is a store whose MarkRead waits until release is closed, and
// which tells asked when receipts are read from it.
type heldReads struct {
	store.Store
	release chan struct{}
	asked   chan struct{}
}

func (h *heldReads) Receipts(ctx context.Context, sender string, ids []string) ([]store.Receipt, error) {
	select {
	case h.asked <- struct{}{}:
	default:
	}
	return h.Store.Receipts(ctx, sender, ids)
}

func (h *heldReads) MarkRead(ctx context.Context, client string, ids []string, upto uint64, at time.Time) (int, error) {
	<-h.release
	return h.Store.MarkRead(ctx, client, ids, upto, at)
}

// A read report does not hold its client's connection while the store
// writes it (the request behind it is answered at once), and a sender who
// asks afterwards waits for it: it sees the message read.
func TestReadReportWrittenBesideTheConnection(t *testing.T) {
	st := &heldReads{Store: openDurable(t, "sqlite", t.TempDir()), release: make(chan struct{}), asked: make(chan struct{}, 1)}
	r := startRelay(t, func(_ *Server, o *hub.Options) { o.Store = st })
	a, _ := r.connect("A", 0)
	b, _ := r.connect("B", 0)
	expect[*protocol.Presence](a) // B joined
	a.send(&protocol.Send{Ref: "1", To: protocol.Recipients{"B"}, Body: "read me"})
	id := expect[*protocol.Accepted](a).ID
	m := expect[*protocol.Message](b)
	b.send(&protocol.Ack{Upto: m.Seq})

	b.send(&protocol.Read{IDs: []string{id}})
	b.send(&protocol.Receipts{Ref: "after-read"})
	if rs := expect[*protocol.Receipts](b); rs.Ref != "after-read" {
		t.Fatalf("B got %+v", rs)
	}
	// A asks while the report is still being written: its answer waits
	// for it (an answer given earlier would say delivered).
	a.send(&protocol.Receipts{Ref: "q", IDs: []string{id}})
	// Nothing must happen in this interval: the store is not asked for
	// A's receipts while B's report is still being written. (There is no
	// sign to wait for instead: A's request only waits, unseen.)
	select {
	case <-st.asked:
		t.Fatal("A's receipts were read from the store before B's read report was written")
	case <-time.After(100 * time.Millisecond):
	}
	close(st.release)
	rs := expect[*protocol.Receipts](a)
	if len(rs.Receipts) != 1 || rs.Receipts[0].State != protocol.ReceiptRead {
		t.Fatalf("A's receipts after the report was written: %+v", rs.Receipts)
	}
	if p := peerOf(t, a, "B"); p.Unread != 0 || p.LastRead.IsZero() {
		t.Fatalf("B in A's peer list: %+v", p)
	}
}
