package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
)

// seedBig fills id's inbox with n unread messages (a full inbox is the
// hook's slowest case: it reads the whole log).
func seedBig(tb testing.TB, home, id string, n int) {
	tb.Helper()
	b, err := inbox.Open(filepath.Join(home, "inbox", id), inbox.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	ms := make([]protocol.Message, n)
	for i := range ms {
		ms[i] = protocol.Message{Seq: uint64(i + 1), ID: fmt.Sprintf("0193a1b2-0000-7000-8000-%012d", i+1), From: "CC-1", To: []string{id},
			Body: fmt.Sprintf("message %d: a finding of moderate length about some file and line", i), TS: time.Now()}
	}
	if _, err := b.Add(ms...); err != nil {
		tb.Fatal(err)
	}
}
