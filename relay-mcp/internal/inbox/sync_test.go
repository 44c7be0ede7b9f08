package inbox

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// While the disk flushes, the inbox goes on: messages are stored, listed
// and marked read. Only Sync's callers (the link's ack) wait, and calls
// that come meanwhile share one more fsync.
func TestSyncHoldsNothingTheToolsNeed(t *testing.T) {
	b, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	var fsyncs atomic.Int32
	b.fsync = func(f *os.File) error {
		fsyncs.Add(1)
		entered <- struct{}{}
		<-release
		return f.Sync()
	}
	b.Add(msg(1, "m1", "X"))
	first := make(chan error, 1)
	go func() { first <- b.Sync() }()
	<-entered // the flush of m1 is under way and does not end

	within := func(what string, fn func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { fn(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s waited for the fsync", what)
		}
	}
	within("Add", func() { b.Add(msg(2, "m2", "X"), msg(3, "m3", "Y")) })
	within("List", func() {
		if got := b.List(Query{}); len(got) != 3 {
			t.Errorf("listed %d while the disk flushed, want 3", len(got))
		}
	})
	within("MarkRead", func() { b.MarkRead("m1") })
	within("Counts", func() { b.Counts() })

	// Two acks wait behind the flush in progress (it began before m2 was
	// written, so it does not cover it) and share the next one.
	second := make(chan error, 2)
	go func() { second <- b.Sync() }()
	go func() { second <- b.Sync() }()
	select {
	case err := <-second:
		t.Fatalf("a Sync returned before a flush covered the writes it follows (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-second; err != nil {
			t.Fatal(err)
		}
	}
	if n := fsyncs.Load(); n != 2 {
		t.Fatalf("%d fsyncs, want 2: the waiting calls share one", n)
	}
	if err := b.Sync(); err != nil || fsyncs.Load() != 2 {
		t.Fatalf("a Sync with nothing new written flushed again (err %v, %d fsyncs)", err, fsyncs.Load())
	}
}

// Changes answers with what was stored or marked read since the last look,
// by this process or another.
func TestChangesSince(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Add(msg(1, "m1", "X"), msg(2, "m2", "Y"))
	all, since := b.Changes(0)
	if len(all) != 2 || all[0].ID != "m1" || all[1].ID != "m2" || all[1].From != "Y" {
		t.Fatalf("Changes(0) = %+v", all)
	}
	if none, again := b.Changes(since); len(none) != 0 || again != since {
		t.Fatalf("nothing changed, Changes = %+v (%d, was %d)", none, again, since)
	}
	other, err := Open(dir, Options{}) // a hook, say
	if err != nil {
		t.Fatal(err)
	}
	other.MarkRead("m1")
	other.Add(msg(3, "m3", "X"))
	other.Close()
	got, _ := b.Changes(since)
	if len(got) != 2 || got[0] != (Brief{ID: "m1", From: "X", Read: true}) || got[1].ID != "m3" || got[1].Read {
		t.Fatalf("after another process read m1 and stored m3: %+v", got)
	}
}

// A full inbox drops the oldest read message first, then the oldest.
func TestBoundDropsReadFirst(t *testing.T) {
	b, err := Open(t.TempDir(), Options{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Add(msg(1, "m1", "X"), msg(2, "m2", "X"), msg(3, "m3", "X"))
	b.MarkRead("m2")
	b.Add(msg(4, "m4", "X"))
	if got := ids(b.List(Query{IncludeRead: true})); fmt.Sprint(got) != "[m1 m3 m4]" {
		t.Fatalf("after m4: %v, want the read m2 dropped", got)
	}
	b.Add(msg(5, "m5", "X"))
	if got := ids(b.List(Query{IncludeRead: true})); fmt.Sprint(got) != "[m3 m4 m5]" {
		t.Fatalf("after m5: %v, want the oldest, m1, dropped", got)
	}
	if _, _, dropped := b.Counts(); dropped != 2 {
		t.Fatalf("dropped %d, want 2", dropped)
	}
}
