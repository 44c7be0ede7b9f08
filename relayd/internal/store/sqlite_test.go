package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSQLiteReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, SessionInfo{ID: "a", Host: "mbp", LastSeen: base}); err != nil {
		t.Fatal(err)
	}
	var sent []Message
	for range 4 {
		m := newMsg("b", "a")
		if _, err := s.Append(ctx, m, m.To, 0); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
	}
	if err := s.Ack(ctx, "a", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	s = openSQLite(t, dir)
	ds, err := s.Pending(ctx, "a", 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "pending after reopen", seqs(ds), []uint64{3, 4})
	if len(ds) == 2 && (ds[0].Msg.Body != sent[2].Body || !ds[0].Msg.TS.Equal(sent[2].TS)) {
		t.Errorf("message after reopen = %+v, want %+v", ds[0].Msg, sent[2])
	}
	if n := lastSeq(t, s, "a"); n != 4 {
		t.Errorf("LastSeq = %d, want 4", n)
	}
	if n := unacked(t, s, "a"); n != 2 {
		t.Errorf("Unacked = %d, want 2", n)
	}
	for _, id := range []string{"a", "b"} {
		if k, _ := s.Known(ctx, id); id == "a" && !k {
			t.Errorf("Known(%s) after reopen = false", id)
		}
	}
	list, queued, err := s.Sessions(ctx)
	if err != nil || len(list) != 1 || list[0].Host != "mbp" || queued["a"] != 2 {
		t.Errorf("Sessions after reopen = %+v, %v, %v", list, queued, err)
	}
	h, _ := history(t, s, HistoryQuery{Client: "b"})
	eq(t, "sender's history after reopen", ids(h), ids(sent))
	if sl := send(t, s, newMsg("b", "a")); sl[0].Seq != 5 {
		t.Errorf("seq after reopen = %d, want 5", sl[0].Seq)
	}
}

// TestSQLiteSeqsSurviveEmptyMailboxes: once Clear or Prune removed a
// mailbox's newest entries, a restart must still continue its seqs.
func TestSQLiteSeqsSurviveEmptyMailboxes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openSQLite(t, dir)
	for range 3 {
		send(t, s, newMsg("x", "a", "b"))
	}
	if _, err := s.Clear(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, base.Add(1000*time.Hour)); err != nil {
		t.Fatal(err)
	}
	send(t, s, newMsg("x", "c"))
	s.Close()

	s = openSQLite(t, dir)
	for id, want := range map[string]uint64{"a": 4, "b": 4, "c": 2} {
		if sl := send(t, s, newMsg("x", id)); sl[0].Seq != want {
			t.Errorf("seq for %s after reopen = %d, want %d", id, sl[0].Seq, want)
		}
	}
}

func TestSQLitePruneInChunks(t *testing.T) {
	ctx := context.Background()
	s := openSQLite(t, t.TempDir())
	s.pruneChunk = 3 // before any Prune: only the Prune caller reads it
	var old []Message
	for range 10 {
		m := newMsg("x", "a", "b")
		send(t, s, m)
		old = append(old, m)
	}
	mustAck(t, s, "a", 4)
	cut := newMsg("x").TS
	send(t, s, newMsg("x", "a"))
	n, err := s.Prune(ctx, cut)
	if err != nil || n != 20 {
		t.Fatalf("Prune = %d, %v; want 20", n, err)
	}
	eq(t, "a's mailbox", seqs(pending(t, s, "a", 0, 0)), []uint64{11})
	if u := unacked(t, s, "a"); u != 1 {
		t.Errorf("Unacked(a) = %d, want 1", u)
	}
	if u := unacked(t, s, "b"); u != 0 {
		t.Errorf("Unacked(b) = %d, want 0", u)
	}
}

func TestSQLiteRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s := openSQLite(t, dir)
	s.Close()
	path := filepath.Join(dir, FileName)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err = Open(context.Background(), dir, Options{})
	if err == nil {
		t.Fatal("Open of a file from a newer relayd succeeded")
	}
	t.Logf("newer schema: %v", err)
	for _, want := range []string{path, "newer relayd", "99", "upgrade relayd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestSQLiteCorruptFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	junk := make([]byte, 64<<10)
	rand.Read(junk)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), dir, Options{})
	if err == nil {
		t.Fatal("Open of random bytes succeeded")
	}
	t.Logf("corrupt file: %v", err)
	for _, want := range []string{path, "move it aside", "backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The directory lock was released: a repaired store opens.
	os.Remove(path)
	openSQLite(t, dir)
}

func TestSQLiteUnusableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "data")
	_, err := Open(context.Background(), dir, Options{})
	t.Logf("not a directory: %v", err)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("Open(%s) = %v, want an error naming the directory and the fix", dir, err)
	}

	if os.Geteuid() == 0 {
		return // root writes through permission bits
	}
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), ro, Options{})
	if err == nil || !strings.Contains(err.Error(), ro) || !strings.Contains(err.Error(), "not writable") {
		t.Errorf("Open(read-only %s) = %v, want an error naming the directory and the fix", ro, err)
	}
}

func TestSQLiteOneProcessPerDirectory(t *testing.T) {
	dir := t.TempDir()
	openSQLite(t, dir)
	_, err := Open(context.Background(), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "in use by another relayd") {
		t.Errorf("second Open = %v, want an error saying the directory is in use", err)
	}
}

// makeReadOnly makes path unwritable, even for root where it can (chattr
// +i), and returns the undo.
func makeReadOnly(t *testing.T, path string) (undo func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0o400); err != nil {
			t.Fatal(err)
		}
		return func() { os.Chmod(path, 0o600) }
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("cannot make %s read-only for root (chattr +i: %v %s)", path, err, out)
	}
	undo = func() { exec.Command("chattr", "-i", path).Run() }
	t.Cleanup(undo) // t.TempDir cannot remove an immutable file
	return undo
}

func TestSQLiteReadOnlyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openSQLite(t, dir)
	send(t, s, newMsg("b", "a"))
	send(t, s, newMsg("b", "a"))
	s.Close()
	writable := makeReadOnly(t, filepath.Join(dir, FileName))

	s = openSQLite(t, dir)
	_, err := s.Append(ctx, newMsg("b", "a"), []string{"a"}, 0)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append to a read-only file: err = %v, want ErrUnavailable", err)
	}
	t.Logf("read-only file: %v", err)
	if !strings.Contains(err.Error(), "writable") {
		t.Errorf("error %q does not say how to fix it", err)
	}
	// Delivery of what is stored goes on.
	eq(t, "pending", seqs(pending(t, s, "a", 0, 0)), []uint64{1, 2})
	if _, _, err := s.Sessions(ctx); err != nil {
		t.Errorf("Sessions: %v", err)
	}

	writable()
	if sl := send(t, s, newMsg("b", "a")); sl[0].Seq != 3 {
		t.Errorf("seq once writable again = %d, want 3", sl[0].Seq)
	}
	eq(t, "pending", seqs(pending(t, s, "a", 0, 0)), []uint64{1, 2, 3})
}

func TestSQLiteWriteFailureAndRecovery(t *testing.T) {
	ctx := context.Background()
	s := openSQLite(t, t.TempDir())
	send(t, s, newMsg("b", "a"))

	fail := func(*sql.Tx) error { return errors.New("injected: no space left on device") }
	s.hookInTx.Store(&fail)
	for range 3 {
		_, err := s.Append(ctx, newMsg("b", "a", "c"), []string{"a", "c"}, 0)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no space left") {
			t.Fatalf("Append while failing: err = %v, want ErrUnavailable with the cause", err)
		}
	}
	if err := s.Touch(ctx, SessionInfo{ID: "a", LastSeen: base}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Touch while failing: err = %v, want ErrUnavailable", err)
	}
	eq(t, "pending while failing", seqs(pending(t, s, "a", 0, 0)), []uint64{1})
	if n := lastSeq(t, s, "a"); n != 1 {
		t.Errorf("LastSeq while failing = %d, want 1", n)
	}
	if k, _ := s.Known(ctx, "c"); k {
		t.Error("Known(c) = true after a failed append")
	}

	s.hookInTx.Store(nil)
	slots := send(t, s, newMsg("b", "a", "c"))
	if slots[0].Seq != 2 || slots[1].Seq != 1 {
		t.Errorf("slots after recovery = %+v, want a:2 c:1 (no seq lost to the failures)", slots)
	}
}

// TestSQLiteDiskFull makes SQLite itself run out of room (max_page_count) so
// that the real SQLITE_FULL path is classified and recovered from.
func TestSQLiteDiskFull(t *testing.T) {
	ctx := context.Background()
	s := openSQLite(t, t.TempDir())
	send(t, s, newMsg("b", "a"))

	full := func(tx *sql.Tx) error {
		var pages int
		if err := tx.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
			return err
		}
		_, err := tx.Exec("PRAGMA max_page_count = " + strconv.Itoa(pages))
		return err
	}
	s.hookInTx.Store(&full)
	big := newMsg("b", "a")
	big.Body = strings.Repeat("x", 64<<10)
	_, err := s.Append(ctx, big, big.To, 0)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "disk is full") {
		t.Fatalf("Append on a full disk: err = %v, want ErrUnavailable saying the disk is full", err)
	}
	t.Logf("disk full: %v", err)
	eq(t, "pending on a full disk", seqs(pending(t, s, "a", 0, 0)), []uint64{1})

	s.hookInTx.Store(nil) // space returns
	if sl := send(t, s, big); sl[0].Seq != 2 {
		t.Errorf("seq after the disk has room = %d, want 2", sl[0].Seq)
	}
}

func TestSQLiteClose(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	send(t, s, newMsg("b", "a"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.stopped:
	default:
		t.Fatal("Close returned before the committer stopped")
	}
	if _, err := s.Append(ctx, newMsg("b", "a"), []string{"a"}, 0); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append after Close: err = %v, want ErrUnavailable", err)
	}
}

func TestSQLiteAppendCancelled(t *testing.T) {
	s := openSQLite(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, newMsg("b", "a"), []string{"a"}, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context: err = %v, want context.Canceled", err)
	}
	// A cancelled append uses no seq.
	if sl := send(t, s, newMsg("b", "a")); sl[0].Seq != 1 {
		t.Errorf("seq = %d, want 1", sl[0].Seq)
	}
}

// TestSQLiteLinger checks the batching knobs keep their promises.
func TestSQLiteLinger(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{MaxBatch: 2, Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testConcurrentAppend(t, s)
}
