package cluster_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// A message on the stream is a store.Message in its JSON form, and every
// node reads it, whatever version a rolling upgrade left it running: its
// keys are a format, kept as they were.
func TestMailEventFormat(t *testing.T) {
	m := store.Message{ID: "m2", From: "CC-1", To: []string{"CC-2"}, Body: "the bug is in auth.js line 42",
		TS: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ReplyTo: "m1", Thread: "m1"}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"m2","from":"CC-1","to":["CC-2"],"body":"the bug is in auth.js line 42","ts":"2026-01-02T03:04:05Z","reply_to":"m1","thread":"m1"}`
	if string(b) != want {
		t.Errorf("message event\n%s\nwant\n%s", b, want)
	}
	if b, _ := json.Marshal(store.Message{ID: "m3"}); string(b) != `{"id":"m3","from":"","to":null,"body":"","ts":"0001-01-01T00:00:00Z"}` {
		t.Errorf("a message with no reply_to nor thread: %s", b)
	}
}
