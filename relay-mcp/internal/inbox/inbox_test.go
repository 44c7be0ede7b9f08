package inbox

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

func msg(seq uint64, id, from string) protocol.Message {
	return protocol.Message{Seq: seq, ID: id, From: from, To: []string{"me"}, Body: "body " + id, TS: time.Now()}
}

func TestDedupPersistAndReadState(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	added, _ := b.Add(msg(1, "a", "X"), msg(2, "b", "Y"), msg(2, "b", "Y"))
	if len(added) != 2 {
		t.Fatalf("added %d, want 2", len(added))
	}
	if added, _ := b.Add(msg(3, "a", "X")); len(added) != 0 { // resent with a new seq
		t.Fatal("duplicate stored")
	}
	if b.ResumeAfter() != 3 {
		t.Fatalf("max seq %d", b.ResumeAfter())
	}
	b.MarkRead("a")
	b.Close()

	b2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if b2.ResumeAfter() != 3 {
		t.Fatalf("max seq after reopen %d", b2.ResumeAfter())
	}
	un := b2.List(Query{})
	if len(un) != 1 || un[0].ID != "b" {
		t.Fatalf("unread after reopen: %+v", un)
	}
	if all := b2.List(Query{IncludeRead: true}); len(all) != 2 {
		t.Fatalf("all: %d", len(all))
	}
	if from := b2.List(Query{From: "X", IncludeRead: true}); len(from) != 1 {
		t.Fatalf("from X: %d", len(from))
	}
	n, _ := b2.Clear(false)
	if n != 1 {
		t.Fatalf("cleared %d", n)
	}
	if _, unread, _ := b2.Counts(); unread != 1 {
		t.Fatalf("unread %d", unread)
	}
	n, _ = b2.Clear(true)
	if n != 1 || b2.ResumeAfter() != 3 {
		t.Fatalf("clear unread: %d, seq %d", n, b2.ResumeAfter())
	}
}

// Two handles on one inbox (the server and a hook, or an old and a new
// process) see each other's changes.
func TestTwoWriters(t *testing.T) {
	dir := t.TempDir()
	a, _ := Open(dir, Options{})
	b, _ := Open(dir, Options{})
	defer a.Close()
	defer b.Close()
	a.Add(msg(1, "m1", "X"))
	b.Add(msg(2, "m2", "X"))
	b.MarkRead("m1")
	if got := a.List(Query{}); len(got) != 1 || got[0].ID != "m2" {
		t.Fatalf("a sees %+v", got)
	}
	if a.ResumeAfter() != 2 {
		t.Fatalf("a max seq %d", a.ResumeAfter())
	}
}

// A process that only reads the inbox (a hook, a watcher) sees another
// process's appends, read marks and compactions: its Refresh skips the
// lock only while the log is the very file and size it applied.
func TestReaderSeesOtherWritersAndCompaction(t *testing.T) {
	dir := t.TempDir()
	w, _ := Open(dir, Options{Limit: 10})
	r, _ := Open(dir, Options{Limit: 10})
	defer w.Close()
	defer r.Close()
	for i := 1; i <= 300; i++ {
		id := fmt.Sprintf("m%03d", i)
		w.Add(msg(uint64(i), id, "X"))
		if i%3 != 0 {
			w.MarkRead(id)
		}
		got := r.List(Query{})
		want := 0
		for _, e := range w.List(Query{}) {
			if e.ID == id {
				want++
			}
		}
		if i%3 == 0 && (want != 1 || len(got) == 0 || got[len(got)-1].ID != id) {
			t.Fatalf("after %s (unread): the reader lists %d, last %+v", id, len(got), got)
		}
		for _, e := range got {
			if e.ID == id && i%3 != 0 {
				t.Fatalf("after %s (read): the reader lists it unread", id)
			}
		}
	}
	if w.lines >= 300 {
		t.Fatalf("the writer never compacted (%d lines)", w.lines)
	}
	wt, wu, _ := w.Counts()
	r.Refresh()
	if rt, ru, _ := r.Counts(); rt != wt || ru != wu || r.ResumeAfter() != 300 {
		t.Fatalf("reader holds %d (%d unread, seq %d), writer %d (%d unread)", rt, ru, r.ResumeAfter(), wt, wu)
	}
}

func TestBoundAndCompaction(t *testing.T) {
	dir := t.TempDir()
	b, _ := Open(dir, Options{Limit: 10})
	for i := 1; i <= 400; i++ {
		id := fmt.Sprintf("m%03d", i)
		b.Add(msg(uint64(i), id, "X"))
		if i%2 == 0 {
			b.MarkRead(id)
		}
	}
	total, unread, dropped := b.Counts()
	if total != 10 || dropped != 390 {
		t.Fatalf("total %d unread %d dropped %d", total, unread, dropped)
	}
	b.Close()
	b2, _ := Open(dir, Options{Limit: 10})
	defer b2.Close()
	if total2, _, _ := b2.Counts(); total2 != 10 || b2.ResumeAfter() != 400 {
		t.Fatalf("reopened: total %d seq %d", total2, b2.ResumeAfter())
	}
}

func TestChangedWakes(t *testing.T) {
	b, _ := Open(t.TempDir(), Options{})
	defer b.Close()
	ch := b.Changed()
	go b.Add(msg(1, "x", "X"))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake")
	}
}

func TestOutboxOrderAndPersistence(t *testing.T) {
	dir := t.TempDir()
	o, _ := OpenOutbox(dir, 2)
	o.Push(protocol.Send{Ref: "r1", To: protocol.Recipients{"A"}, Body: "1"})
	o.Push(protocol.Send{Ref: "r2", To: protocol.Recipients{"A"}, Body: "2"})
	if _, err := o.Push(protocol.Send{Ref: "r3", Body: "3"}); err == nil {
		t.Fatal("bound not enforced")
	}
	o2, _ := OpenOutbox(dir, 2)
	p, ok := o2.Peek()
	if !ok || p.Send.Ref != "r1" || o2.Len() != 2 {
		t.Fatalf("peek %+v", p)
	}
	o2.Remove("r1")
	p, _ = o2.Peek()
	if p.Send.Ref != "r2" {
		t.Fatalf("order: %+v", p)
	}
}

// A relay whose store was reset numbers the mailbox from 1 again and resends
// what it holds: the resume point follows it down, so the next hello does not
// claim seqs the new mailbox never issued (which would skip new mail).
func TestResumePointFollowsAResetMailbox(t *testing.T) {
	dir := t.TempDir()
	b, _ := Open(dir, Options{})
	b.Add(msg(41, "old1", "X"), msg(42, "old2", "X"))
	if b.ResumeAfter() != 42 {
		t.Fatalf("resume after %d", b.ResumeAfter())
	}
	// After the reset: the relay resends a message it still held (a
	// duplicate by id) and a new one, numbered from 1.
	added, _ := b.Add(msg(1, "old2", "X"))
	if len(added) != 0 || b.ResumeAfter() != 1 {
		t.Fatalf("duplicate after reset: added %d, resume after %d", len(added), b.ResumeAfter())
	}
	b.Add(msg(2, "new1", "Y"))
	if b.ResumeAfter() != 2 {
		t.Fatalf("resume after %d, want 2", b.ResumeAfter())
	}
	b.Close()
	b2, _ := Open(dir, Options{})
	if b2.ResumeAfter() != 2 {
		t.Fatalf("reopened: resume after %d, want 2", b2.ResumeAfter())
	}
	// A compacted snapshot keeps it too.
	b2.mu.Lock()
	err := b2.compact()
	b2.mu.Unlock()
	b2.Close()
	b3, _ := Open(dir, Options{})
	defer b3.Close()
	if err != nil || b3.ResumeAfter() != 2 {
		t.Fatalf("after compaction: resume after %d (%v)", b3.ResumeAfter(), err)
	}
}

// Logs written before the cursor record existed kept max_seq.
func TestLegacyMaxSeqRecord(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "messages.jsonl"), []byte(`{"max_seq":7}`+"\n"), 0o600)
	b, _ := Open(dir, Options{})
	defer b.Close()
	if b.ResumeAfter() != 7 {
		t.Fatalf("resume after %d, want 7", b.ResumeAfter())
	}
}

func TestOutboxGivesStableRefs(t *testing.T) {
	dir := t.TempDir()
	o, _ := OpenOutbox(dir, 0)
	ref, err := o.Push(protocol.Send{To: protocol.Recipients{"A"}, Body: "1"})
	if err != nil || ref == "" || len(ref) > protocol.MaxIDLen {
		t.Fatalf("ref %q, %v", ref, err)
	}
	ref2, _ := o.Push(protocol.Send{To: protocol.Recipients{"A"}, Body: "1"})
	if ref2 == ref {
		t.Fatal("two sends, one ref")
	}
	kept, _ := o.Push(protocol.Send{Ref: "given", To: protocol.Recipients{"A"}, Body: "2"})
	if kept != "given" {
		t.Fatalf("a given ref was replaced: %q", kept)
	}
	o2, _ := OpenOutbox(dir, 0) // a restarted relay-mcp resends with the same ref
	if p, _ := o2.Peek(); p.Send.Ref != ref {
		t.Fatalf("ref after reopen %q, want %q", p.Send.Ref, ref)
	}
}

// BenchmarkAddRead is one message through a session's inbox: stored when
// the relay confirms it, listed and marked read by relay_receive.
func BenchmarkAddRead(b *testing.B) {
	in, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("0190f0c2-0000-7000-8000-%012d", i)
		if _, err := in.Add(msg(uint64(i+1), id, "X")); err != nil {
			b.Fatal(err)
		}
		in.List(Query{})
		if err := in.MarkRead(id); err != nil {
			b.Fatal(err)
		}
	}
}

// The inbox's Shortener, which looks at the ids held instead of copying
// them, shortens every id as the package's Shortener over the same ids,
// tails shared by two ids included, and leaves an id not held whole.
func TestInboxShortenerMatches(t *testing.T) {
	in, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ids := []string{
		"0190f0c2-0000-7000-8000-aaaa11112222",
		"0190f0c2-0000-7000-8001-aaaa11112222", // same last 12
		"0190f0c2-0000-7000-8000-bbbb11112222", // same last 8
		"0190f0c2-0000-7000-8000-000000000001",
	}
	for i, id := range ids {
		if _, err := in.Add(msg(uint64(i+1), id, "X")); err != nil {
			t.Fatal(err)
		}
	}
	want, got := Shortener(ids), in.Shortener()
	for _, id := range append(ids, "0190f0c2-0000-7000-8000-cccc11112222") {
		if got(id) != want(id) {
			t.Errorf("%s: %q, want %q", id, got(id), want(id))
		}
	}
	if s := got(ids[3]); s != "00000001" {
		t.Errorf("short form of %s = %q", ids[3], s)
	}
}
