package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
)

// journalState is everything a client or the operator can read of a
// store, for comparing a journal store with itself after a reopen.
type journalState struct {
	Sessions []SessionInfo
	Queued   map[string]int
	Boxes    map[string][]string // mailbox → "seq:id" of each pending delivery
	Last     map[string]uint64
	History  map[string][]string
	Receipts []Receipt
	Reads    map[string]ReadState
	Holds    []Hold
	Found    []string
}

var journalClients = []string{"a", "b", "c", "d"}

func readJournalState(t *testing.T, s Store, sent []string) journalState {
	t.Helper()
	ctx := context.Background()
	var st journalState
	var err error
	if st.Sessions, st.Queued, err = s.Sessions(ctx); err != nil {
		t.Fatal(err)
	}
	st.Boxes, st.Last, st.History = map[string][]string{}, map[string]uint64{}, map[string][]string{}
	for _, c := range journalClients {
		for _, d := range pending(t, s, c, 0, 0) {
			st.Boxes[c] = append(st.Boxes[c], fmt.Sprintf("%d:%s", d.Seq, d.Msg.ID))
		}
		st.Last[c] = lastSeq(t, s, c)
		h, _ := history(t, s, HistoryQuery{Client: c, Limit: 1000})
		st.History[c] = ids(h)
	}
	for _, c := range journalClients {
		rs, err := s.Receipts(ctx, c, sent)
		if err != nil {
			t.Fatal(err)
		}
		st.Receipts = append(st.Receipts, rs...)
	}
	if st.Reads, err = s.ReadStates(ctx, journalClients); err != nil {
		t.Fatal(err)
	}
	if st.Holds, err = s.Holds(ctx, 10); err != nil {
		t.Fatal(err)
	}
	found, _, err := s.Search(ctx, SearchQuery{Text: "message", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	st.Found = ids(found)
	return st
}

// writeJournalHistory makes a store go through every kind of write, and
// returns the ids of the messages sent.
func writeJournalHistory(t *testing.T, s Store) []string {
	t.Helper()
	ctx := context.Background()
	var sent []string
	var first Message
	for i, c := range journalClients {
		if err := s.Touch(ctx, SessionInfo{ID: c, Host: "h", PID: 100 + i, Agent: "claude-code", LastSeen: base.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		from, to := journalClients[i%4], journalClients[(i+1)%4]
		m := newMsg(from, to)
		send(t, s, m)
		sent = append(sent, m.ID)
		if i == 0 {
			first = m
		}
	}
	all := newMsg("a", "*")
	send(t, s, all, "b", "c", "d")
	sent = append(sent, all.ID)
	mustAck(t, s, "b", 2)
	if _, err := s.MarkRead(ctx, "b", nil, 2, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkRead(ctx, "c", []string{sent[1]}, 0, base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Clear(ctx, "d", false); err != nil {
		t.Fatal(err)
	}
	// Retention drops the first message only: what was read stays.
	if _, err := s.Prune(ctx, first.TS.Add(time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutHold(ctx, Hold{Pair: [2]string{"c", "a"}, By: "P-ops", At: base}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutHold(ctx, Hold{Pair: [2]string{"b", "d"}, By: "P-ops", At: base}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EndHold(ctx, [2]string{"d", "b"}, "P-ops", base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A send with a ref: its retry after a reopen must be recognised.
	ref := &SendRef{Ref: "r-1", Digest: [32]byte{1, 2, 3}}
	m := newMsg("c", "d")
	r := submitWait(t, s, m, []string{"d"}, ref)
	if r.Err != nil || r.Dup != nil {
		t.Fatalf("send with a ref: %+v", r)
	}
	sent = append(sent, m.ID)
	return sent
}

func submitWait(t *testing.T, s Store, msg Message, recipients []string, ref *SendRef) Submitted {
	t.Helper()
	ch := make(chan Submitted, 1)
	s.Submit(msg, recipients, 0, ref, func(r Submitted) { ch <- r })
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("Submit(%s): done never ran", msg.ID)
		return Submitted{}
	}
}

// TestJournalReopen: what a journal store answers after a close and a
// reopen, and after a compaction, is what it answered before.
func TestJournalReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenJournal(context.Background(), dir, JournalOptions{CompactAt: -1})
	if err != nil {
		t.Fatal(err)
	}
	sent := writeJournalHistory(t, s)
	want := readJournalState(t, s, sent)
	if len(want.Boxes["b"]) == 0 || len(want.Holds) != 2 || len(want.Receipts) == 0 {
		t.Fatalf("the history wrote too little to compare: %+v", want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name      string
		compactAt int64
	}{{"replay", -1}, {"compacted", 1}, {"replay of the compacted file", -1}} {
		s, err := OpenJournal(context.Background(), dir, JournalOptions{CompactAt: c.compactAt})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := readJournalState(t, s, sent); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: state differs from before the close\n got %+v\nwant %+v", c.name, got, want)
		}
		// The retry of the send with a ref is answered with the first.
		m := newMsg("c", "d")
		r := submitWait(t, s, m, []string{"d"}, &SendRef{Ref: "r-1", Digest: [32]byte{1, 2, 3}})
		if r.Dup == nil || r.Dup.ID != sent[len(sent)-1] {
			t.Errorf("%s: retry of r-1 = %+v, want a duplicate of %s", c.name, r, sent[len(sent)-1])
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestJournalCompactionShrinks: pruned mail stops costing space once the
// journal is compacted, and new writes go on after the snapshot with the
// seqs they would have had.
func TestJournalCompactionShrinks(t *testing.T) {
	dir := t.TempDir()
	s := openJournalDir(t, dir, -1)
	for range 200 {
		send(t, s, newMsg("a", "b"))
	}
	mustAck(t, s, "b", 200)
	if _, err := s.Prune(context.Background(), base.Add(1000*time.Hour)); err != nil {
		t.Fatal(err)
	}
	before, _ := s.UsedBytes(context.Background())
	s.Close()
	s = openJournalDir(t, dir, 1)
	after, _ := s.UsedBytes(context.Background())
	if after >= before/4 {
		t.Errorf("compaction took the journal from %d to %d bytes, want under a quarter", before, after)
	}
	m := newMsg("a", "b")
	m.TS = base.Add(2000 * time.Hour) // not pruned
	if slots := send(t, s, m); slots[0].Seq != 201 {
		t.Errorf("first send after compaction got seq %d, want 201 (seqs are never reused)", slots[0].Seq)
	}
	s.Close()
	s = openJournalDir(t, dir, -1)
	if got := pending(t, s, "b", 0, 0); len(got) != 1 || got[0].Msg.ID != m.ID || got[0].Seq != 201 {
		t.Errorf("after compaction and reopen b holds %v, want %s at 201", got, m.ID)
	}
}

func openJournalDir(t *testing.T, dir string, compactAt int64) *JournalStore {
	t.Helper()
	return openJournal(t, dir, JournalOptions{CompactAt: compactAt})
}

// TestJournalTornTail: relayd killed in the middle of a write leaves part
// of a record; the next open cuts it off, says so, and keeps the rest.
func TestJournalTornTail(t *testing.T) {
	dir := t.TempDir()
	s := openJournalDir(t, dir, -1)
	kept := newMsg("a", "b")
	send(t, s, kept)
	s.Close()
	path := filepath.Join(dir, JournalFile)
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := appendRecord(nil, recSubmit, jSubmit{Msg: toJMsg(&Message{ID: "torn", From: "a", To: []string{"b"}}), Recipients: []string{"b"}, Seqs: []uint64{2}})
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{3, recHeader, len(rec) - 1} {
		if err := os.WriteFile(path, append(bytes.Clone(whole), rec[:cut]...), 0o600); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		s, err := OpenJournal(context.Background(), dir, JournalOptions{CompactAt: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("open with %d bytes of a torn record: %v", cut, err)
		}
		if got := pending(t, s, "b", 0, 0); len(got) != 1 || got[0].Msg.ID != kept.ID {
			t.Errorf("cut %d: b holds %v, want only %s", cut, got, kept.ID)
		}
		if !strings.Contains(logs.String(), "torn record") {
			t.Errorf("cut %d: nothing logged about the torn record: %s", cut, logs.String())
		}
		asides, _ := filepath.Glob(path + ".torn-*")
		if len(asides) != 1 {
			t.Fatalf("cut %d: %d files kept the torn end aside, want 1", cut, len(asides))
		}
		if b, err := os.ReadFile(asides[0]); err != nil || !bytes.Equal(b, rec[:cut]) {
			t.Errorf("cut %d: %s holds %q (%v), want the %d bytes cut off", cut, asides[0], b, err, cut)
		}
		os.Remove(asides[0])
		next := newMsg("a", "b")
		if slots := send(t, s, next); slots[0].Seq != 2 {
			t.Errorf("cut %d: the next send got seq %d, want 2", cut, slots[0].Seq)
		}
		s.Close()
		if fi, _ := os.Stat(path); fi.Size() <= int64(len(whole)) {
			t.Fatalf("cut %d: the next send was not written", cut)
		}
		// What was written after the cut replays.
		s = openJournalDir(t, dir, -1)
		if got := pending(t, s, "b", 0, 0); len(got) != 2 || got[1].Msg.ID != next.ID {
			t.Errorf("cut %d: after reopen b holds %v, want %s then %s", cut, got, kept.ID, next.ID)
		}
		s.Close()
		if err := os.WriteFile(path, whole, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestJournalDamaged: a damaged record with data after it is not cut off
// silently: the open fails naming the file and what to do.
func TestJournalDamaged(t *testing.T) {
	dir := t.TempDir()
	s := openJournalDir(t, dir, -1)
	for range 3 {
		send(t, s, newMsg("a", "b"))
	}
	s.Close()
	path := filepath.Join(dir, JournalFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[recHeader+5] ^= 0xff // inside the first record's body
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenJournal(context.Background(), dir, JournalOptions{})
	if err == nil || !strings.Contains(err.Error(), "damaged at byte 0") || !strings.Contains(err.Error(), "mv "+path) {
		t.Fatalf("open of a damaged journal: %v, want an error saying where and how to move it aside", err)
	}
}

// TestJournalWriteFails: a send whose write fails (full disk) is not
// stored: its sender is told why, no reader sees it afterwards, and the
// store takes writes again once the disk does.
func TestJournalWriteFails(t *testing.T) {
	dir := t.TempDir()
	s := openJournalDir(t, dir, -1)
	first := newMsg("a", "b")
	send(t, s, first)
	full := func([]byte) error { return fmt.Errorf("write: %w", syscall.ENOSPC) }
	s.hookWrite.Store(&full)
	lost := newMsg("a", "b")
	r := submitWait(t, s, lost, []string{"b"}, nil)
	if !errors.Is(r.Err, ErrUnavailable) || !strings.Contains(r.Err.Error(), "disk is full") {
		t.Fatalf("send on a full disk: %+v, want ErrUnavailable saying the disk is full", r)
	}
	if err := s.Ack(context.Background(), "b", 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ack on a full disk: %v, want ErrUnavailable", err)
	}
	if got := pending(t, s, "b", 0, 0); len(got) != 1 || got[0].Msg.ID != first.ID {
		// The ack keeps its effect in memory: b's first message is acked.
		if len(got) != 0 {
			t.Errorf("after the failed send b holds %v, want nothing but %s (or nothing once acked)", got, first.ID)
		}
	}
	if h, _ := history(t, s, HistoryQuery{Client: "a"}); slicesContains(ids(h), lost.ID) {
		t.Errorf("history shows the send that failed: %v", ids(h))
	}
	s.hookWrite.Store(nil)
	next := newMsg("a", "b")
	if slots := send(t, s, next); slots[0].Seq != 3 {
		t.Errorf("send after the disk recovered got seq %d, want 3 (the failed send's 2 stays unused)", slots[0].Seq)
	}
	s.Close()
	s = openJournalDir(t, dir, -1)
	h, _ := history(t, s, HistoryQuery{Client: "b"})
	if got := ids(h); len(got) != 2 || got[0] != first.ID || got[1] != next.ID {
		t.Errorf("after reopen b's history is %v, want %s and %s", got, first.ID, next.ID)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestJournalProvisional: a send is visible to provisional readers while
// its record is being written, and to others only once it is written.
func TestJournalProvisional(t *testing.T) {
	s := openJournalDir(t, t.TempDir(), -1)
	release := make(chan struct{})
	var once sync.Once
	hold := func([]byte) error { <-release; return nil }
	s.hookWrite.Store(&hold)
	defer once.Do(func() { close(release) })
	m := newMsg("a", "b")
	done := make(chan Submitted, 1)
	// The sender becomes the writer, and waits in the write.
	go s.Submit(m, []string{"b"}, 0, nil, func(r Submitted) { done <- r })
	ctx := context.Background()
	var ds []Delivery
	waitFor(t, "the send in memory", func() bool { ds, _ = s.Pending(ctx, "b", 0, 0, true); return len(ds) == 1 })
	if !ds[0].Provisional || ds[0].Seq != 1 {
		t.Errorf("provisional reader before the write: %+v, want seq 1 marked provisional", ds)
	}
	if ds, _ := s.Pending(ctx, "b", 0, 0, false); len(ds) != 0 {
		t.Errorf("committed reader before the write: %+v, want nothing", ds)
	}
	if n := lastSeq(t, s, "b"); n != 0 {
		t.Errorf("LastSeq before the write = %d, want 0", n)
	}
	once.Do(func() { close(release) })
	if r := <-done; r.Err != nil || len(r.Slots) != 1 || r.Slots[0].Seq != 1 {
		t.Fatalf("done = %+v", r)
	}
	if ds, _ := s.Pending(ctx, "b", 0, 0, false); len(ds) != 1 || ds[0].Provisional {
		t.Errorf("committed reader after the write: %+v, want the message, not provisional", ds)
	}
}

// TestJournalDoneOnCaller: a send whose caller writes it (nobody else was
// writing) is answered on the caller's goroutine, before Submit returns,
// and says so (OnCaller); a send queued behind a write in progress is
// answered by the background writer, and does not.
func TestJournalDoneOnCaller(t *testing.T) {
	s := openJournalDir(t, t.TempDir(), -1)
	var lone Submitted
	answered := false
	s.Submit(newMsg("a", "b"), []string{"b"}, 0, nil, func(r Submitted) { lone, answered = r, true })
	if !answered || lone.Err != nil || !lone.OnCaller {
		t.Fatalf("lone send: answered before Submit returned %v, %+v; want answered, OnCaller", answered, lone)
	}
	release := make(chan struct{})
	hold := func([]byte) error { <-release; return nil }
	s.hookWrite.Store(&hold)
	first, queued := make(chan Submitted, 1), make(chan Submitted, 1)
	go s.Submit(newMsg("a", "b"), []string{"b"}, 0, nil, func(r Submitted) { first <- r }) // the writer, held in the write
	waitFor(t, "the first send in memory", func() bool { return unacked(t, s, "b") == 2 })
	s.Submit(newMsg("c", "b"), []string{"b"}, 0, nil, func(r Submitted) { queued <- r })
	s.hookWrite.Store(nil)
	close(release)
	if r := <-first; r.Err != nil || !r.OnCaller {
		t.Errorf("the writer's own send: %+v, want OnCaller", r)
	}
	if r := <-queued; r.Err != nil || r.OnCaller {
		t.Errorf("a send queued behind the write: %+v, want it answered off its caller", r)
	}
	if r := submitWait(t, NewMemory(), newMsg("a", "b"), []string{"b"}, nil); !r.OnCaller {
		t.Errorf("memory store: %+v, want OnCaller", r)
	}
}

// TestJournalRetryOfFailedSend: a retry that comes while the first attempt
// is being written is answered once that write is settled: with the first
// record, or, when it failed, with an error asking to send again.
func TestJournalRetryOfFailedSend(t *testing.T) {
	s := openJournalDir(t, t.TempDir(), -1)
	release := make(chan struct{})
	fail := func([]byte) error { <-release; return syscall.ENOSPC }
	s.hookWrite.Store(&fail)
	ref := &SendRef{Ref: "r-9", Digest: [32]byte{9}}
	first, retry := make(chan Submitted, 1), make(chan Submitted, 1)
	go s.Submit(newMsg("a", "b"), []string{"b"}, 0, ref, func(r Submitted) { first <- r }) // the writer, held in the write
	waitFor(t, "the first attempt in memory", func() bool { return len(pending(t, s, "b", 0, 0)) == 0 && unacked(t, s, "b") == 1 })
	if slots, early := s.Submit(newMsg("a", "b"), []string{"b"}, 0, ref, func(r Submitted) { retry <- r }); slots != nil || early {
		t.Errorf("retry in flight got slots %v early %v, want none", slots, early)
	}
	close(release)
	if r := <-first; r.Err == nil {
		t.Errorf("first attempt: %+v, want the write's error", r)
	}
	if r := <-retry; r.Err == nil || !strings.Contains(r.Err.Error(), "send it again") {
		t.Errorf("retry: %+v, want an error asking to send again", r)
	}
	s.hookWrite.Store(nil)
	if r := submitWait(t, s, newMsg("a", "b"), []string{"b"}, ref); r.Err != nil || r.Dup != nil || r.Slots[0].Seq == 0 {
		t.Errorf("send again: %+v, want it stored", r)
	}
}

// FuzzJournalReplay: whatever bytes the journal file holds, opening it
// either works or fails with an error; it never panics.
func FuzzJournalReplay(f *testing.F) {
	var seed []byte
	for _, r := range []struct {
		kind byte
		v    any
	}{
		{recTouch, jTouch{ID: "a", LastSeen: 1}},
		{recSubmit, jSubmit{Msg: jMsg{ID: "m1", From: "a", To: []string{"b"}, TS: 1}, Recipients: []string{"b"}, Seqs: []uint64{1}, Ref: "r", Digest: make([]byte, 32)}},
		{recAck, jAck{ID: "b", Upto: 1, At: 2}},
		{recRead, jRead{Client: "b", Upto: 1, At: 3}},
		{recClear, jClear{ID: "b"}},
		{recPrune, jPrune{Before: 1}},
		{recHold, jHold{Pair: [2]string{"a", "b"}, By: "P", At: 1}},
		{recEndHold, jEndHold{Pair: [2]string{"a", "b"}, By: "P", At: 2}},
		{recMessage, jMessage{Msg: jMsg{ID: "m2", From: "a", TS: 2}, Hidden: []string{"a"}}},
		{recBox, jBox{ID: "c", Last: 3, Entries: []jBoxItem{{Seq: 3, Msg: "m2"}}}},
		{recRef, jRef{Client: "a", Ref: "r2", Digest: make([]byte, 32), ID: "m2", Seqs: []uint64{3}}},
		{recHolds, jHolds{}},
	} {
		var err error
		if seed, err = appendRecord(seed, r.kind, r.v); err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.Clone(seed))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 'S'})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, JournalFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenJournal(context.Background(), dir, JournalOptions{CompactAt: -1})
		if err != nil {
			return
		}
		// Whatever it replayed, it reads and takes writes.
		readJournalState(t, s, []string{"m1", "m2"})
		send(t, s, newMsg("a", "b"))
		s.Close()
	})
}

// TestJournalCompactsWhileOpen: a relay that runs for months does not
// restart to shrink its journal: the writer compacts it once it has doubled
// past CompactAt, between two batches, and what it answered before is what
// it answers after, and after a reopen.
func TestJournalCompactsWhileOpen(t *testing.T) {
	dir := t.TempDir()
	var logs testkit.Buffer
	s, err := OpenJournal(context.Background(), dir, JournalOptions{CompactAt: 16 << 10, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	var written, largest int64
	var last Message
	for i := range 600 {
		last = newMsg("a", "b")
		before, _ := s.UsedBytes(ctx)
		send(t, s, last)
		mustAck(t, s, "b", uint64(i+1))
		if i%50 == 49 {
			// Retention: what is older than the last 20 messages goes.
			if _, err := s.Prune(ctx, last.TS.Add(-20*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		// A compaction writes its snapshot beside the writer; waiting for
		// it here makes each one take the journal's place before the next
		// send, as a relay's pace would (TestJournalSendsGoOnWhileCompacting
		// sends while one is written).
		s.compactions.Wait()
		after, _ := s.UsedBytes(ctx)
		if after > before {
			written += after - before
		}
		largest = max(largest, after)
	}
	if !strings.Contains(logs.String(), "compacted the message journal") {
		t.Fatalf("the journal was never compacted while open (%d bytes written, largest %d)", written, largest)
	}
	if largest > 64<<10 {
		t.Errorf("the journal grew to %d bytes with a 16 KiB CompactAt and ~20 messages live", largest)
	}
	want := readJournalState(t, s, []string{last.ID})
	s.Close()
	s = openJournalDir(t, dir, -1)
	if got := readJournalState(t, s, []string{last.ID}); !reflect.DeepEqual(got, want) {
		t.Errorf("after reopen the state differs\n got %+v\nwant %+v", got, want)
	}
	if got := pending(t, s, "b", 0, 0); len(got) != 0 {
		t.Errorf("b holds %d messages, all acked", len(got))
	}
	if slots := send(t, s, newMsg("a", "b")); slots[0].Seq != 601 {
		t.Errorf("next seq after compactions and reopen = %d, want 601", slots[0].Seq)
	}
}

// TestJournalSendsGoOnWhileCompacting: a compaction's snapshot is written
// beside the journal, not by the writer: sends made meanwhile are written
// and answered at once, and the journal that replaces the old one holds
// them too — every message once, after a reopen.
func TestJournalSendsGoOnWhileCompacting(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenJournal(context.Background(), dir, JournalOptions{CompactAt: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	started, release := make(chan struct{}), make(chan struct{})
	hook := func() {
		close(started)
		<-release
	}
	s.hookSnapshot.Store(&hook)
	var ids []string
	for len(ids) < 2000 {
		m := newMsg("a", "b")
		send(t, s, m)
		ids = append(ids, m.ID)
		select {
		case <-started: // a compaction is under way, and held: sends go on
			more := make([]string, 100)
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				for i := range more {
					m := newMsg("a", "b")
					ch := make(chan Submitted, 1)
					s.Submit(m, []string{"b"}, 0, nil, func(r Submitted) { ch <- r })
					if sub := <-ch; sub.Err != nil {
						t.Error(sub.Err)
						return
					}
					more[i] = m.ID
				}
			}()
			select {
			case <-sent:
			case <-time.After(10 * time.Second):
				t.Fatal("sends wait for the compaction's snapshot")
			}
			ids = append(ids, more...)
			close(release)
			s.compactions.Wait()
			s.hookSnapshot.Store(nil)
			goto compacted
		default:
		}
	}
	t.Fatal("no compaction started after 2000 sends with a 16 KiB CompactAt")
compacted:
	for range 10 { // and after it, in the new journal
		m := newMsg("a", "b")
		send(t, s, m)
		ids = append(ids, m.ID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, JournalFile+".compact")); err == nil {
		t.Error("the snapshot's file stayed beside the journal")
	}
	s = openJournalDir(t, dir, -1)
	got := pending(t, s, "b", 0, 0)
	if len(got) != len(ids) {
		t.Fatalf("after reopen b holds %d messages, want %d", len(got), len(ids))
	}
	for i, p := range got {
		if p.Msg.ID != ids[i] || p.Seq != uint64(i+1) {
			t.Fatalf("after reopen b's message %d is %s seq %d, want %s seq %d", i, p.Msg.ID, p.Seq, ids[i], i+1)
		}
	}
}

// A snapshot left beside the journal by a crash during a compaction (before
// its rename) is removed at open; the journal, which holds everything, is
// what relayd replays.
func TestJournalStaleSnapshotRemoved(t *testing.T) {
	dir := t.TempDir()
	s := openJournalDir(t, dir, -1)
	m := newMsg("a", "b")
	send(t, s, m)
	s.Close()
	stale := filepath.Join(dir, JournalFile+".compact")
	if err := os.WriteFile(stale, []byte("half a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openJournalDir(t, dir, -1)
	if _, err := os.Stat(stale); err == nil {
		t.Error("the unfinished snapshot stayed beside the journal")
	}
	if got := pending(t, s, "b", 0, 0); len(got) != 1 || got[0].Msg.ID != m.ID {
		t.Errorf("b holds %v, want %s", got, m.ID)
	}
}

// A store closed while its compaction's snapshot is being written stops
// the snapshot, removes its file and keeps the journal, whole.
func TestJournalCloseDuringCompaction(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenJournal(context.Background(), dir, JournalOptions{CompactAt: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	hook := func() {
		close(started)
		<-release
	}
	s.hookSnapshot.Store(&hook)
	n := 0
	for ; n < 2000; n++ {
		send(t, s, newMsg("a", "b"))
		select {
		case <-started:
		default:
			continue
		}
		break
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	time.Sleep(20 * time.Millisecond) // Close waits for the snapshot meanwhile
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, JournalFile+".compact")); err == nil {
		t.Error("the abandoned snapshot's file stayed beside the journal")
	}
	s = openJournalDir(t, dir, -1)
	if got := pending(t, s, "b", 0, 0); len(got) != n+1 {
		t.Errorf("after reopen b holds %d messages, want %d", len(got), n+1)
	}
}

// TestConvertToJournal: a data directory's SQLite store becomes a journal
// store that answers every read as it did, recognises the retry of a send
// it had, and goes on with the seqs; relay.db is kept aside.
func TestConvertToJournal(t *testing.T) {
	dir := t.TempDir()
	sq, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sent := writeJournalHistory(t, sq)
	want := readJournalState(t, sq, sent)
	sq.Close()

	got, err := ConvertToJournal(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Messages != len(want.Found) || got.Sessions != 4 || got.Holds != 2 || got.Refs != 1 {
		t.Errorf("converted %+v, want %d messages, 4 sessions, 2 holds, 1 ref", got, len(want.Found))
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err == nil {
		t.Errorf("%s is still in the data directory", FileName)
	}
	if _, err := os.Stat(filepath.Join(got.Aside, FileName)); err != nil {
		t.Errorf("%s was not kept aside: %v", FileName, err)
	}
	j := openJournalDir(t, dir, -1)
	if st := readJournalState(t, j, sent); !reflect.DeepEqual(st, want) {
		t.Errorf("the journal store answers otherwise than the SQLite store did\n got %+v\nwant %+v", st, want)
	}
	if r := submitWait(t, j, newMsg("c", "d"), []string{"d"}, &SendRef{Ref: "r-1", Digest: [32]byte{1, 2, 3}}); r.Dup == nil || r.Dup.ID != sent[len(sent)-1] {
		t.Errorf("retry of r-1 after the conversion = %+v, want a duplicate of %s", r, sent[len(sent)-1])
	}
	last := want.Last["b"]
	if slots := send(t, j, newMsg("a", "b")); slots[0].Seq != last+1 {
		t.Errorf("next seq in b = %d, want %d", slots[0].Seq, last+1)
	}
	if _, err := ConvertToJournal(context.Background(), dir); err == nil {
		t.Error("a second conversion of the same directory was not refused")
	}
}

// The records written without reflection — a send's, and a snapshot's
// message and mailbox records — are byte for byte what appendRecord makes
// of the same values with encoding/json, for strings that need escaping
// too: replay decodes both alike.
func TestFastRecordsAsJSON(t *testing.T) {
	tricky := []string{"", "CC-1", `say "hi" \ back`, "<script>&</script>", "line\nbreak\ttab", "\u2028\u2029", "bad \xff utf-8", "😀 ünïcode", "\x00\x1f"}
	for i, s := range tricky {
		next := tricky[(i+1)%len(tricky)]
		msg := Message{ID: "m-" + s, From: s, To: []string{next, s}, Body: s + next, TS: time.Unix(1700000000, int64(i)), ReplyTo: next, Thread: s}
		slots := []Slot{{Seq: uint64(i + 1)}, {Seq: 1 << 40}}
		refs := []*SendRef{nil, {Ref: s, Digest: [32]byte{byte(i), 0xff}}, {Digest: [32]byte{1}}}
		for _, ref := range refs {
			want := jSubmit{Msg: toJMsg(&msg), Recipients: []string{next, s}, Seqs: []uint64{uint64(i + 1), 1 << 40}}
			if ref != nil {
				want.Ref, want.Digest = ref.Ref, ref.Digest[:]
			}
			sameRecord(t, "send", appendSubmitRecord(nil, &msg, []string{next, s}, slots, ref), recSubmit, want)
		}
		for _, hidden := range [][]string{nil, {s, next}} {
			r := jMessage{Msg: toJMsg(&msg), Hidden: hidden}
			sameRecord(t, "message", appendMessageRecord(nil, &r), recMessage, r)
		}
		for _, entries := range [][]jBoxItem{nil, {{Seq: 1, Msg: s, Delivered: 5, Read: -1}, {Seq: 2, Msg: next}}} {
			r := jBox{ID: s, Last: uint64(i), Acked: 1, ReadThrough: uint64(i % 2), LastRead: int64(i % 3), Entries: entries}
			sameRecord(t, "mailbox", appendBoxRecord(nil, &r), recBox, r)
		}
	}
}

func sameRecord(t *testing.T, what string, got []byte, kind byte, v any) {
	t.Helper()
	want, err := appendRecord(nil, kind, v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s record\n got %q\nwant %q", what, got, want)
	}
}

// TestSnapshotUnchangedByLaterWrites: a compaction takes the message list
// and the mailboxes' entries as they are (collect) and writes them out
// after the store's lock is released, while sends, acks, read reports,
// clears and prunes go on. What it writes must be the store as collect
// found it, whatever comes after: the records emit makes of it are the
// same before and after a round of every kind of write, over mailboxes
// several blocks long.
func TestSnapshotUnchangedByLaterWrites(t *testing.T) {
	s := openJournal(t, t.TempDir(), JournalOptions{CompactAt: -1})
	ctx := context.Background()
	var ids []string
	for i := range 3*chunkLen + 100 {
		m := newMsg("a", "b")
		if i%3 == 0 {
			m.To = []string{"b", "c"}
		}
		send(t, s, m)
		ids = append(ids, m.ID)
	}
	mustAck(t, s, "b", 500)
	if _, err := s.MarkRead(ctx, "b", ids[600:700], 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	st := s.collect()
	s.mu.Unlock()
	records := func() string {
		var out []byte
		err := st.emit(func(kind byte, v any) error {
			if bc, ok := v.(boxCopy); ok {
				v = bc.record()
			}
			b, err := json.Marshal(v)
			out = append(append(append(out, kind), b...), '\n')
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	before := records()

	mustAck(t, s, "b", 2500)
	if _, err := s.MarkRead(ctx, "b", ids[1000:1200], 2000, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkRead(ctx, "c", nil, 900, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, base.Add(time.Duration(idCounter.Load()-2000)*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Clear(ctx, "c", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Clear(ctx, "a", false); err != nil { // hides a's sent messages from its history
		t.Fatal(err)
	}
	for range chunkLen + 10 {
		send(t, s, newMsg("a", "b"))
	}
	if after := records(); after != before {
		t.Fatalf("the snapshot collect took changed with the writes after it (%d bytes of records before, %d after)", len(before), len(after))
	}
	// And the store itself did change: the round of writes was not lost.
	if p := pending(t, s, "b", 0, 0); len(p) == 0 || p[0].Seq <= 2500 {
		t.Fatalf("b's mailbox after the ack up to 2500 starts at %v", seqs(p[:min(1, len(p))]))
	}
}
