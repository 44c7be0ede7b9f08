package tools

import (
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
)

// Results show a message id by its last 8 characters (more where two ids
// share them), and take that short form back wherever an id goes in.
func TestShortIDs(t *testing.T) {
	in, err := inbox.Open(t.TempDir(), inbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ids := []string{
		"01a2357a-9a60-7000-96a3-468cb8bd804e",
		"01a2357a-9a61-7000-a04d-dd1b9613734f",
		"01a2357a-9a62-7000-b111-00009613734f", // shares its last 8 with the one above
	}
	for i, id := range ids {
		if _, err := in.Add(protocol.Message{Seq: uint64(i + 1), ID: id, From: "CC-2", To: protocol.Recipients{"CC-1"}, Body: "m", TS: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	d := &Deps{Inbox: in}
	short := d.shortener(nil)
	if got := short(ids[0]); got != "b8bd804e" {
		t.Errorf("short(%s) = %q, want b8bd804e", ids[0], got)
	}
	if got := short(ids[1]); got != "b9613734f" || !strings.HasSuffix(ids[1], got) {
		t.Errorf("short(%s) = %q, want the 9-character tail b9613734f", ids[1], got)
	}
	for _, id := range ids {
		if got, err := d.resolveID("id", short(id)); err != nil || got != id {
			t.Errorf("resolveID(%s) = %q, %v; want %s", short(id), got, err, id)
		}
		if got, err := d.resolveID("id", id); err != nil || got != id {
			t.Errorf("resolveID(whole %s) = %q, %v", id, got, err)
		}
	}
	if _, err := d.resolveID("reply_to", "9613734f"); err == nil || !strings.Contains(err.Error(), "matches 2 messages") {
		t.Errorf("an ambiguous tail: %v", err)
	}
	if _, err := d.resolveID("reply_to", "not an id!"); err == nil {
		t.Error("a bad id accepted")
	}
	text, _ := render(in.List(inbox.Query{}), false, short)
	if strings.Contains(text, ids[0]) || !strings.Contains(text, "--- b8bd804e from CC-2 at ") {
		t.Errorf("headers show whole ids:\n%s", text)
	}
}
