package server

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// failingStore is the real SQLite store whose writes fail while fail is
// set: a full or broken disk, which a test cannot make on demand.
type failingStore struct {
	store.Store
	fail atomic.Bool
}

var errDiskFull = errors.New("database or disk is full")

func (f *failingStore) Submit(msg store.Message, recipients []string, maxQueue int, ref *store.SendRef, done func(store.Submitted)) ([]store.Slot, bool) {
	if f.fail.Load() {
		done(store.Submitted{Err: errDiskFull})
		return nil, false
	}
	return f.Store.Submit(msg, recipients, maxQueue, ref, done)
}

// /healthz said ok while every store write failed. It says degraded, with
// HTTP 503, from the first failed write until a write succeeds again.
func TestHealthzDegradedWhileStoreWritesFail(t *testing.T) {
	sq, err := store.Open(context.Background(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	fs := &failingStore{Store: sq}
	r := startRelay(t, func(_ *Server, o *hub.Options) { o.Store = fs })
	a, _ := r.connect("CC-1", 0)
	r.connect("CC-2", 0)
	health := func() (int, string) {
		t.Helper()
		resp, err := http.Get(r.hts.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h struct {
			Status string `json:"status"`
		}
		if err := jsonDecode(resp, &h); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, h.Status
	}
	if code, st := health(); code != 200 || st != "ok" {
		t.Fatalf("healthy relay: %d %s", code, st)
	}
	fs.fail.Store(true)
	a.send(&protocol.Send{Ref: "1", To: protocol.Recipients{"CC-2"}, Body: "x"})
	if e := expect[*protocol.ErrorFrame](a); e.Code != protocol.CodeStoreUnavailable {
		t.Fatalf("send while the store fails: %+v", e)
	}
	if code, st := health(); code != http.StatusServiceUnavailable || st != "degraded" {
		t.Fatalf("while store writes fail: %d %s, want 503 degraded", code, st)
	}
	fs.fail.Store(false)
	a.send(&protocol.Send{Ref: "2", To: protocol.Recipients{"CC-2"}, Body: "y"})
	expect[*protocol.Accepted](a)
	if code, st := health(); code != 200 || st != "ok" {
		t.Fatalf("after a write succeeded again: %d %s", code, st)
	}
}
