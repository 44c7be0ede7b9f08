package metrics

import (
	"context"
	"testing"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// The timing wrapper hides no optional interface: read receipts are found
// through it, for a plain store and a pipelining one.
func TestStoreWrapperKeepsReceipts(t *testing.T) {
	m := New()
	if _, ok := store.ReceiptsOf(m.Store(store.NewMemory())); !ok {
		t.Error("no receipts through the wrapper of a memory store")
	}
	sq, err := store.Open(context.Background(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	if _, ok := store.ReceiptsOf(m.Store(sq)); !ok {
		t.Error("no receipts through the wrapper of a SQLite store")
	}
}
