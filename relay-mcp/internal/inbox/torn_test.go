package inbox

import (
	"os"
	"path/filepath"
	"testing"
)

// A log that ends in a partial line (a crash or a full disk in the middle
// of an append) must not swallow the next record: the message appended
// after it was acked to the relay, so losing it loses it for good.
func TestTornTailDoesNotSwallowTheNextMessage(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.Add(msg(1, "m1", "X"), msg(2, "m2", "X"))
	b.Close()

	f, err := os.OpenFile(filepath.Join(dir, "messages.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"msg":{"seq":3,"id":"01a2`) // torn: no newline
	f.Close()

	b, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if added, err := b.Add(msg(3, "m3", "X")); err != nil || len(added) != 1 {
		t.Fatalf("add after a torn tail: %v, %d added", err, len(added))
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	b.Close()

	b, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := b.List(Query{})
	if len(got) != 3 || got[2].ID != "m3" {
		t.Fatalf("unread after restart: %d entries %v, want m1 m2 m3", len(got), ids(got))
	}
	if b.ResumeAfter() != 3 {
		t.Fatalf("resume point %d, want 3", b.ResumeAfter())
	}
}

func ids(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}
