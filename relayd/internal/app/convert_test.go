package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// relayd convert turns a data directory's SQLite store into a journal
// store that holds the same mail, says where the old files went, and
// refuses to run twice.
func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	sq, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	msg := store.Message{ID: "0193a1b2-0000-7000-8000-000000000001", From: "CC-1", To: []string{"CC-2"}, Body: "the bug is in auth.js line 42", TS: time.Now().UTC()}
	if _, err := store.AppendWait(ctx, sq, msg, []string{"CC-2"}, 0); err != nil {
		t.Fatal(err)
	}
	sq.Close()

	code, out, stderr := run(t, "convert", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "1 messages in 1 mailboxes") || !strings.Contains(out, "--store journal") {
		t.Fatalf("relayd convert = %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err == nil {
		t.Errorf("%s stayed in the data directory", store.FileName)
	}
	j, err := store.OpenJournal(ctx, dir, store.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := j.Pending(ctx, "CC-2", 0, 0, false)
	j.Close()
	if err != nil || len(ds) != 1 || ds[0].Msg.Body != msg.Body || ds[0].Seq != 1 {
		t.Fatalf("CC-2's mailbox after the conversion: %+v, %v; want the message at seq 1", ds, err)
	}
	code, _, stderr = run(t, "convert", "--data-dir", dir)
	if code != 1 || !strings.Contains(stderr, "no SQLite store to convert") {
		t.Errorf("a second convert = %d, %s; want 1 saying there is nothing to convert", code, stderr)
	}
}

// relayd doctor run with the other store's flags on a converted data
// directory says so, and leaves no relay.db behind it (which would keep
// relayd --store journal from starting).
func TestDoctorOnTheOtherStoresDir(t *testing.T) {
	dir := t.TempDir()
	j, err := store.OpenJournal(context.Background(), dir, store.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	_, out := doctorLines(t, "--data-dir", dir, "--listen", "127.0.0.1:0", "--store", "sqlite")
	if !hasLine(out, "FAIL", "store", "holds relay.journal.*--store journal") {
		t.Errorf("doctor (sqlite) on a journal data dir did not say it holds relay.journal:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err == nil {
		t.Errorf("doctor created %s beside relay.journal", store.FileName)
	}
}
