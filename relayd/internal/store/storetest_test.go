package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The conformance suite: every Store implementation must pass every case.
// The interface's doc comments are the contract; where a case pins down a
// detail they leave open, both stores agree on it.

type storeKind struct {
	name string
	open func(t testing.TB) Store
}

var storeKinds = []storeKind{
	{"memory", func(testing.TB) Store { return NewMemory() }},
	{"sqlite", func(t testing.TB) Store { return openSQLite(t, t.TempDir()) }},
	{"journal", func(t testing.TB) Store { return openJournal(t, t.TempDir(), JournalOptions{}) }},
}

func openJournal(t testing.TB, dir string, opts JournalOptions) *JournalStore {
	t.Helper()
	j, err := OpenJournal(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("OpenJournal(%s): %v", dir, err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func openSQLite(t testing.TB, dir string) *SQLite {
	t.Helper()
	s, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var conformance = []struct {
	name string
	run  func(t *testing.T, s Store)
}{
	{"SeqPerRecipient", testSeqPerRecipient},
	{"Broadcast", testBroadcast},
	{"Pending", testPending},
	{"AckBeyondLast", testAckBeyondLast},
	{"Full", testFull},
	{"History", testHistory},
	{"HistoryPaging", testHistoryPaging},
	{"HistoryForward", testHistoryForward},
	{"HistoryThread", testHistoryThread},
	{"Clear", testClear},
	{"ClearUnread", testClearUnread},
	{"Prune", testPrune},
	{"Sessions", testSessions},
	{"Known", testKnown},
	{"DuplicateID", testDuplicateID},
	{"ToAsSent", testToAsSent},
	{"ConcurrentAppend", testConcurrentAppend},
}

func TestConformance(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			for _, c := range conformance {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, k.open(t))
				})
			}
		})
	}
}

// ---- helpers ----

var idCounter atomic.Uint64

// base is the time of message 0; message n is n seconds later, and ids grow
// with n, as UUIDv7 ids grow with time.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newMsg(from string, to ...string) Message {
	n := idCounter.Add(1)
	return Message{
		ID:   fmt.Sprintf("0193a1b2-0000-7000-8000-%012d", n),
		From: from,
		To:   to,
		Body: fmt.Sprintf("message %d from %s", n, from),
		TS:   base.Add(time.Duration(n) * time.Second),
	}
}

// send appends a message from → to (recipients = to, or the given list for
// a broadcast) and fails the test on error.
func send(t *testing.T, s Store, msg Message, recipients ...string) []Slot {
	t.Helper()
	if len(recipients) == 0 {
		recipients = msg.To
	}
	slots, err := AppendWait(context.Background(), s, msg, recipients, 0)
	if err != nil {
		t.Fatalf("Append(%s): %v", msg.ID, err)
	}
	if len(slots) != len(recipients) {
		t.Fatalf("Append(%s) gave %d slots for %d recipients", msg.ID, len(slots), len(recipients))
	}
	return slots
}

func pending(t *testing.T, s Store, id string, after uint64, limit int) []Delivery {
	t.Helper()
	d, err := s.Pending(context.Background(), id, after, limit, false)
	if err != nil {
		t.Fatalf("Pending(%s, %d, %d): %v", id, after, limit, err)
	}
	return d
}

func seqs(ds []Delivery) []uint64 {
	out := make([]uint64, len(ds))
	for i, d := range ds {
		out[i] = d.Seq
	}
	return out
}

func ids(ms []Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func bodies(ms []Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Body
	}
	return out
}

func mustAck(t *testing.T, s Store, id string, upto uint64) {
	t.Helper()
	if err := s.Ack(context.Background(), id, upto); err != nil {
		t.Fatalf("Ack(%s, %d): %v", id, upto, err)
	}
}

func lastSeq(t *testing.T, s Store, id string) uint64 {
	t.Helper()
	n, err := s.LastSeq(context.Background(), id)
	if err != nil {
		t.Fatalf("LastSeq(%s): %v", id, err)
	}
	return n
}

func unacked(t *testing.T, s Store, id string) int {
	t.Helper()
	n, err := s.Unacked(context.Background(), id)
	if err != nil {
		t.Fatalf("Unacked(%s): %v", id, err)
	}
	return n
}

func history(t *testing.T, s Store, q HistoryQuery) ([]Message, bool) {
	t.Helper()
	ms, more, err := s.History(context.Background(), q)
	if err != nil {
		t.Fatalf("History(%+v): %v", q, err)
	}
	return ms, more
}

func eq[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// ---- cases ----

func testSeqPerRecipient(t *testing.T, s Store) {
	got := []uint64{}
	for _, to := range [][]string{{"a"}, {"a", "b"}, {"b"}, {"c", "a"}} {
		for _, sl := range send(t, s, newMsg("x", to...)) {
			if sl.Full {
				t.Fatalf("slot Full with maxQueue 0")
			}
			got = append(got, sl.Seq)
		}
	}
	// a:1 | a:2 b:1 | b:2 | c:1 a:3
	eq(t, "seqs", got, []uint64{1, 2, 1, 2, 1, 3})
	for id, want := range map[string]uint64{"a": 3, "b": 2, "c": 1, "nobody": 0} {
		if n := lastSeq(t, s, id); n != want {
			t.Errorf("LastSeq(%s) = %d, want %d", id, n, want)
		}
	}
}

func testBroadcast(t *testing.T, s Store) {
	msg := newMsg("a", "*")
	msg.ReplyTo, msg.Thread = "0193a1b2-0000-7000-8000-000000000000", "auth"
	slots := send(t, s, msg, "b", "c", "d")
	for i, sl := range slots {
		if sl.Seq != 1 {
			t.Errorf("slot %d = %+v, want seq 1", i, sl)
		}
	}
	for _, id := range []string{"b", "c", "d"} {
		ds := pending(t, s, id, 0, 0)
		if len(ds) != 1 {
			t.Fatalf("Pending(%s) = %d deliveries, want 1", id, len(ds))
		}
		got := ds[0].Msg
		if got.ID != msg.ID || got.From != "a" || got.Body != msg.Body || !got.TS.Equal(msg.TS) ||
			got.ReplyTo != msg.ReplyTo || got.Thread != msg.Thread || !slices.Equal(got.To, []string{"*"}) {
			t.Errorf("Pending(%s) message = %+v, want %+v", id, got, msg)
		}
	}
	if ds := pending(t, s, "a", 0, 0); len(ds) != 0 {
		t.Errorf("the sender's own mailbox holds %d messages, want 0", len(ds))
	}
}

func testPending(t *testing.T, s Store) {
	var sent []Message
	for range 5 {
		m := newMsg("x", "a")
		send(t, s, m)
		sent = append(sent, m)
	}
	all := pending(t, s, "a", 0, 0)
	eq(t, "all", seqs(all), []uint64{1, 2, 3, 4, 5})
	for i, d := range all {
		if d.Msg.ID != sent[i].ID {
			t.Errorf("delivery %d has id %s, want %s (oldest first)", i, d.Msg.ID, sent[i].ID)
		}
	}
	eq(t, "after 2", seqs(pending(t, s, "a", 2, 0)), []uint64{3, 4, 5})
	eq(t, "limit 2", seqs(pending(t, s, "a", 0, 2)), []uint64{1, 2})
	eq(t, "after 1 limit 2", seqs(pending(t, s, "a", 1, 2)), []uint64{2, 3})
	eq(t, "after last", seqs(pending(t, s, "a", 5, 0)), []uint64{})

	mustAck(t, s, "a", 3)
	eq(t, "after ack 3", seqs(pending(t, s, "a", 0, 0)), []uint64{4, 5})
	eq(t, "after 1 with ack 3", seqs(pending(t, s, "a", 1, 0)), []uint64{4, 5})
	if n := unacked(t, s, "a"); n != 2 {
		t.Errorf("Unacked = %d, want 2", n)
	}
	mustAck(t, s, "a", 1) // an older ack does not move the ack back
	eq(t, "after stale ack", seqs(pending(t, s, "a", 0, 0)), []uint64{4, 5})
	if n := unacked(t, s, "a"); n != 2 {
		t.Errorf("Unacked after a stale ack = %d, want 2", n)
	}
	if ds := pending(t, s, "nobody", 0, 0); len(ds) != 0 {
		t.Errorf("Pending(nobody) = %v, want none", ds)
	}
}

func testAckBeyondLast(t *testing.T, s Store) {
	send(t, s, newMsg("x", "a"))
	send(t, s, newMsg("x", "a"))
	// A client acking a seq it cannot have seen must not swallow
	// messages that get that seq later.
	mustAck(t, s, "a", 100)
	if n := unacked(t, s, "a"); n != 0 {
		t.Errorf("Unacked = %d, want 0", n)
	}
	if sl := send(t, s, newMsg("x", "a")); sl[0].Seq != 3 {
		t.Errorf("next seq = %d, want 3", sl[0].Seq)
	}
	eq(t, "pending", seqs(pending(t, s, "a", 0, 0)), []uint64{3})
}

func testFull(t *testing.T, s Store) {
	ctx := context.Background()
	for i := range 3 {
		sl, err := AppendWait(ctx, s, newMsg("x", "a"), []string{"a"}, 3)
		if err != nil || sl[0].Full || sl[0].Seq != uint64(i+1) {
			t.Fatalf("append %d = %+v, %v; want seq %d", i, sl, err, i+1)
		}
	}
	m := newMsg("x", "a", "b")
	sl, err := AppendWait(ctx, s, m, []string{"a", "b"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !sl[0].Full || sl[0].Seq != 0 {
		t.Errorf("slot for the full mailbox = %+v, want Full and seq 0", sl[0])
	}
	if sl[1].Full || sl[1].Seq != 1 {
		t.Errorf("slot for the other recipient = %+v, want seq 1", sl[1])
	}
	eq(t, "a's mailbox", seqs(pending(t, s, "a", 0, 0)), []uint64{1, 2, 3})
	if n := lastSeq(t, s, "a"); n != 3 {
		t.Errorf("LastSeq(a) = %d, want 3: a Full slot uses no seq", n)
	}
	// The message is stored once all the same: b has it, and its sender
	// sees it in its history.
	if h, _ := history(t, s, HistoryQuery{Client: "x", With: "b"}); !slices.Equal(ids(h), []string{m.ID}) {
		t.Errorf("sender's history with b = %v, want [%s]", ids(h), m.ID)
	}
	// A message every recipient's mailbox is full for is not stored: it
	// reached no one, and a sender that keeps sending into full mailboxes
	// must not fill the store.
	lost := newMsg("x", "a")
	sl, err = AppendWait(ctx, s, lost, []string{"a"}, 3)
	if err != nil || len(sl) != 1 || !sl[0].Full {
		t.Fatalf("append to a full mailbox only = %+v, %v; want Full", sl, err)
	}
	if h, _ := history(t, s, HistoryQuery{Client: "x", With: "a"}); slices.Contains(ids(h), lost.ID) {
		t.Errorf("a message stored for no one is in its sender's history: %v", ids(h))
	}
	mustAck(t, s, "a", 1)
	sl, err = AppendWait(ctx, s, lost, []string{"a"}, 3) // its retry, now with room
	if err != nil || sl[0].Full || sl[0].Seq != 4 {
		t.Errorf("append after an ack = %+v, %v; want seq 4", sl, err)
	}
	// maxQueue 0 means no limit.
	if sl := send(t, s, newMsg("x", "a")); sl[0].Full {
		t.Errorf("Full with maxQueue 0")
	}
}

// conversation sets up a, b, c exchanging messages and returns them by name.
func conversation(t *testing.T, s Store) map[string]Message {
	msgs := map[string]Message{}
	add := func(name string, m Message, recipients ...string) {
		m.Body = name
		send(t, s, m, recipients...)
		msgs[name] = m
	}
	add("ab", newMsg("a", "b"))
	add("ba", newMsg("b", "a"))
	add("bc", newMsg("b", "c"))
	add("ca", newMsg("c", "a"))
	add("a*", newMsg("a", "*"), "b", "c")
	add("c-ab", newMsg("c", "a", "b"))
	add("cb", newMsg("c", "b"))
	return msgs
}

func testHistory(t *testing.T, s Store) {
	conversation(t, s)
	for _, c := range []struct {
		q    HistoryQuery
		want []string
	}{
		// Never another pair's direct messages.
		{HistoryQuery{Client: "a"}, []string{"ab", "ba", "ca", "a*", "c-ab"}},
		{HistoryQuery{Client: "b"}, []string{"ab", "ba", "bc", "a*", "c-ab", "cb"}},
		{HistoryQuery{Client: "c"}, []string{"bc", "ca", "a*", "c-ab", "cb"}},
		{HistoryQuery{Client: "a", With: "b"}, []string{"ab", "ba", "a*"}},
		{HistoryQuery{Client: "a", With: "c"}, []string{"ca", "a*", "c-ab"}},
		{HistoryQuery{Client: "b", With: "c"}, []string{"bc", "c-ab", "cb"}},
		{HistoryQuery{Client: "c", With: "a"}, []string{"ca", "a*", "c-ab"}},
		{HistoryQuery{Client: "stranger"}, []string{}},
	} {
		got, more := history(t, s, c.q)
		eq(t, fmt.Sprintf("History(%+v)", c.q), bodies(got), c.want)
		if more {
			t.Errorf("History(%+v) more = true, want false", c.q)
		}
	}
}

func testHistoryPaging(t *testing.T, s Store) {
	m := conversation(t, s)
	// The newest page, oldest first, and more because older ones exist.
	page, more := history(t, s, HistoryQuery{Client: "b", Limit: 2})
	eq(t, "newest page", bodies(page), []string{"c-ab", "cb"})
	if !more {
		t.Error("more = false on the newest page, want true")
	}
	page, more = history(t, s, HistoryQuery{Client: "b", Limit: 2, Before: m["c-ab"].ID})
	eq(t, "page before c-ab", bodies(page), []string{"bc", "a*"})
	if !more {
		t.Error("more = false with older messages left, want true")
	}
	page, more = history(t, s, HistoryQuery{Client: "b", Limit: 2, Before: m["bc"].ID})
	eq(t, "oldest page", bodies(page), []string{"ab", "ba"})
	if more {
		t.Error("more = true on the oldest page, want false")
	}
	page, _ = history(t, s, HistoryQuery{Client: "b", After: m["a*"].ID})
	eq(t, "after a*", bodies(page), []string{"c-ab", "cb"})
	page, _ = history(t, s, HistoryQuery{Client: "b", After: m["ab"].ID, Before: m["a*"].ID})
	eq(t, "between", bodies(page), []string{"ba", "bc"})
	page, more = history(t, s, HistoryQuery{Client: "b", With: "a", Limit: 1})
	eq(t, "with a, limit 1", bodies(page), []string{"a*"})
	if !more {
		t.Error("more = false with a, want true")
	}
}

// After alone pages forward: the oldest page after the cursor, and more
// while newer ones exist.
func testHistoryForward(t *testing.T, s Store) {
	m := conversation(t, s)
	page, more := history(t, s, HistoryQuery{Client: "b", Limit: 2, After: m["ab"].ID})
	eq(t, "first page after ab", bodies(page), []string{"ba", "bc"})
	if !more {
		t.Error("more = false with newer messages left, want true")
	}
	page, more = history(t, s, HistoryQuery{Client: "b", Limit: 2, After: m["bc"].ID})
	eq(t, "page after bc", bodies(page), []string{"a*", "c-ab"})
	if !more {
		t.Error("more = false with cb left, want true")
	}
	page, more = history(t, s, HistoryQuery{Client: "b", Limit: 2, After: m["c-ab"].ID})
	eq(t, "last page", bodies(page), []string{"cb"})
	if more {
		t.Error("more = true on the newest page, want false")
	}
	page, more = history(t, s, HistoryQuery{Client: "b", Limit: 2, After: m["cb"].ID})
	if len(page) != 0 || more {
		t.Errorf("after the newest: %v more=%v, want nothing", bodies(page), more)
	}
	page, _ = history(t, s, HistoryQuery{Client: "a", With: "c", Limit: 5, After: m["ab"].ID})
	eq(t, "a with c after ab", bodies(page), []string{"ca", "a*", "c-ab"})
	// A cursor that is no stored message still bounds by id.
	page, _ = history(t, s, HistoryQuery{Client: "b", Limit: 1, After: m["bc"].ID + "~"})
	eq(t, "after a gone id", bodies(page), []string{"a*"})
	page, _ = history(t, s, HistoryQuery{Client: "b", Limit: 1, Before: m["bc"].ID + "~"})
	eq(t, "before a gone id", bodies(page), []string{"bc"})
}

func testClear(t *testing.T, s Store) {
	ctx := context.Background()
	m := conversation(t, s)
	// a's mailbox: ba(1) ca(2) c-ab(3); it sent ab and a*.
	mustAck(t, s, "a", 2)
	n, err := s.Clear(ctx, "a", false)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 { // 2 acked + 2 sent
		t.Errorf("Clear = %d, want 4", n)
	}
	h, _ := history(t, s, HistoryQuery{Client: "a"})
	eq(t, "a's history after Clear", bodies(h), []string{"c-ab"})
	eq(t, "a's unread mail is kept", seqs(pending(t, s, "a", 0, 0)), []uint64{3})
	if n := lastSeq(t, s, "a"); n != 3 {
		t.Errorf("LastSeq(a) = %d, want 3", n)
	}
	// Others still see what a sent them, and what they sent a.
	h, _ = history(t, s, HistoryQuery{Client: "b", With: "a"})
	eq(t, "b's history with a", bodies(h), []string{"ab", "ba", "a*"})
	ds := pending(t, s, "b", 0, 0)
	if len(ds) == 0 || ds[0].Msg.ID != m["ab"].ID {
		t.Errorf("b's mailbox lost a's message: %v", seqs(ds))
	}
	// Clearing again forgets nothing more.
	if n, err := s.Clear(ctx, "a", false); err != nil || n != 0 {
		t.Errorf("second Clear = %d, %v; want 0", n, err)
	}
	// New mail after a clear continues the seqs.
	if sl := send(t, s, newMsg("b", "a")); sl[0].Seq != 4 {
		t.Errorf("seq after Clear = %d, want 4", sl[0].Seq)
	}
}

func testClearUnread(t *testing.T, s Store) {
	ctx := context.Background()
	conversation(t, s)
	mustAck(t, s, "a", 1)
	n, err := s.Clear(ctx, "a", true)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 { // 3 in the mailbox + 2 sent
		t.Errorf("Clear(includeUnread) = %d, want 5", n)
	}
	if h, _ := history(t, s, HistoryQuery{Client: "a"}); len(h) != 0 {
		t.Errorf("a's history after Clear = %v, want empty", bodies(h))
	}
	if ds := pending(t, s, "a", 0, 0); len(ds) != 0 {
		t.Errorf("a's mailbox after Clear = %v, want empty", seqs(ds))
	}
	if n := unacked(t, s, "a"); n != 0 {
		t.Errorf("Unacked(a) = %d, want 0", n)
	}
	if sl := send(t, s, newMsg("b", "a")); sl[0].Seq != 4 {
		t.Errorf("seq after Clear = %d, want 4 (seqs are never reused)", sl[0].Seq)
	}
	eq(t, "new mail after Clear", seqs(pending(t, s, "a", 0, 0)), []uint64{4})
}

func testPrune(t *testing.T, s Store) {
	ctx := context.Background()
	old1 := newMsg("x", "a", "b")
	old2 := newMsg("x", "a")
	send(t, s, old1)
	send(t, s, old2)
	mustAck(t, s, "a", 1)
	cut := newMsg("x").TS // a time between the old and the new messages
	fresh := newMsg("x", "a", "b")
	send(t, s, fresh)

	n, err := s.Prune(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 { // old1 in a and b, old2 in a
		t.Errorf("Prune = %d, want 3", n)
	}
	eq(t, "a's mailbox", seqs(pending(t, s, "a", 0, 0)), []uint64{3})
	eq(t, "b's mailbox", seqs(pending(t, s, "b", 0, 0)), []uint64{2})
	if n := unacked(t, s, "a"); n != 1 {
		t.Errorf("Unacked(a) = %d, want 1", n)
	}
	if n := unacked(t, s, "b"); n != 1 {
		t.Errorf("Unacked(b) = %d, want 1", n)
	}
	if h, _ := history(t, s, HistoryQuery{Client: "x"}); !slices.Equal(ids(h), []string{fresh.ID}) {
		t.Errorf("sender's history after Prune = %v, want only the fresh message", ids(h))
	}
	if n := lastSeq(t, s, "a"); n != 3 {
		t.Errorf("LastSeq(a) = %d, want 3", n)
	}
	if sl := send(t, s, newMsg("x", "a")); sl[0].Seq != 4 {
		t.Errorf("seq after Prune = %d, want 4", sl[0].Seq)
	}
	if n, err := s.Prune(ctx, cut); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v; want 0", n, err)
	}
}

func testSessions(t *testing.T, s Store) {
	ctx := context.Background()
	t0 := base.Add(-time.Hour)
	if err := s.Touch(ctx, SessionInfo{ID: "b", Host: "mbp", PID: 42, Cwd: "/src", Agent: "claude-code", Label: "auth", LastSeen: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, SessionInfo{ID: "a", Host: "box", LastSeen: t0}); err != nil {
		t.Fatal(err)
	}
	// Touched again later from elsewhere: first seen stays.
	if err := s.Touch(ctx, SessionInfo{ID: "b", Host: "mbp2", PID: 43, LastSeen: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	send(t, s, newMsg("x", "a"))
	send(t, s, newMsg("x", "a"))
	send(t, s, newMsg("x", "z")) // z never connected
	mustAck(t, s, "a", 1)

	list, queued, err := s.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(list))
	for i, si := range list {
		got[i] = si.ID
	}
	eq(t, "session ids", got, []string{"a", "b", "z"})
	if len(list) == 3 {
		b := list[1]
		if b.Host != "mbp2" || b.PID != 43 || !b.FirstSeen.Equal(t0) || !b.LastSeen.Equal(t0.Add(time.Minute)) {
			t.Errorf("session b = %+v, want host mbp2, pid 43, first seen %v, last seen %v", b, t0, t0.Add(time.Minute))
		}
		if a := list[0]; a.Host != "box" || !a.FirstSeen.Equal(t0) {
			t.Errorf("session a = %+v, want host box, first seen = last seen %v", a, t0)
		}
	}
	for id, want := range map[string]int{"a": 1, "b": 0, "z": 1} {
		if queued[id] != want {
			t.Errorf("queued[%s] = %d, want %d", id, queued[id], want)
		}
	}
}

func testKnown(t *testing.T, s Store) {
	ctx := context.Background()
	known := func(id string) bool {
		t.Helper()
		k, err := s.Known(ctx, id)
		if err != nil {
			t.Fatalf("Known(%s): %v", id, err)
		}
		return k
	}
	if known("a") {
		t.Error("Known(a) before anything = true")
	}
	mustAck(t, s, "a", 5) // an ack alone does not make an id known
	if known("a") {
		t.Error("Known(a) after a bare ack = true")
	}
	if err := s.Touch(ctx, SessionInfo{ID: "a", LastSeen: base}); err != nil {
		t.Fatal(err)
	}
	if !known("a") {
		t.Error("Known(a) after Touch = false")
	}
	send(t, s, newMsg("a", "q")) // queued anyway for q
	if !known("q") {
		t.Error("Known(q) after mail to it = false")
	}
	if known("r") {
		t.Error("Known(r) = true")
	}
}

func testDuplicateID(t *testing.T, s Store) {
	ctx := context.Background()
	m := newMsg("x", "a")
	send(t, s, m)
	// The newest message's id again (the one a store may check last).
	if _, err := AppendWait(ctx, s, m, m.To, 0); err == nil {
		t.Fatalf("the newest message's id again: stored, want an error")
	}
	// Concurrent appends share a batch in the SQLite store: the duplicate
	// must fail alone.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			msg := newMsg("x", "a")
			if i == 0 {
				msg = m
			}
			_, errs[i] = AppendWait(ctx, s, msg, msg.To, 0)
		})
	}
	wg.Wait()
	if errs[0] == nil || errors.Is(errs[0], ErrUnavailable) {
		t.Errorf("duplicate id: err = %v, want a non-ErrUnavailable error", errs[0])
	}
	for i, err := range errs[1:] {
		if err != nil {
			t.Errorf("append %d beside a duplicate: %v", i+1, err)
		}
	}
	// A seq the failed append was given while others were on their way
	// is not given again (a reader may have been handed it): the mailbox
	// holds the four, in increasing seqs.
	got := seqs(pending(t, s, "a", 0, 0))
	if len(got) != 4 || got[0] != 1 || !slices.IsSorted(got) || got[3] > 6 {
		t.Errorf("mailbox = %v, want 4 messages from seq 1 in increasing seqs", got)
	}
}

// Each message keeps the To its sender wrote, whether it went to one
// mailbox, several or everyone (a store may share what is alike).
func testToAsSent(t *testing.T, s Store) {
	one, again := newMsg("x", "a"), newMsg("y", "a")
	both := newMsg("x", "a", "b")
	all := newMsg("x", "*")
	send(t, s, one)
	send(t, s, both)
	send(t, s, all, "a", "b")
	send(t, s, again)
	want := map[string][]string{one.ID: {"a"}, both.ID: {"a", "b"}, all.ID: {"*"}, again.ID: {"a"}}
	got := pending(t, s, "a", 0, 0)
	if len(got) != 4 {
		t.Fatalf("a's mailbox holds %d messages, want 4", len(got))
	}
	for _, d := range got {
		if !slices.Equal(d.Msg.To, want[d.Msg.ID]) {
			t.Errorf("message %s: To = %v, want %v", d.Msg.ID, d.Msg.To, want[d.Msg.ID])
		}
	}
	page, _ := history(t, s, HistoryQuery{Client: "b", Limit: 10})
	if len(page) != 2 || !slices.Equal(page[0].To, []string{"a", "b"}) || !slices.Equal(page[1].To, []string{"*"}) {
		t.Errorf("b's history: %v, want the message to a and b, then the broadcast", page)
	}
}

func testConcurrentAppend(t *testing.T, s Store) {
	const writers, perWriter = 8, 500
	recipients := []string{"r0", "r1", "r2", "r3", "r4"}
	ctx := context.Background()
	var mu sync.Mutex
	want := map[string]int{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				// Two overlapping recipients per message, varying by
				// writer and round.
				to := []string{recipients[(w+i)%5], recipients[(w+2*i+1)%5]}
				if to[0] == to[1] {
					to = to[:1]
				}
				msg := newMsg(fmt.Sprintf("w%d", w), to...)
				slots, err := AppendWait(ctx, s, msg, to, 0)
				if err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				}
				for j, sl := range slots {
					if sl.Seq == 0 {
						t.Errorf("writer %d append %d: slot %d has no seq", w, i, j)
					}
				}
				mu.Lock()
				for _, id := range to {
					want[id]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	total := 0
	for _, id := range recipients {
		ds := pending(t, s, id, 0, 0)
		total += len(ds)
		if len(ds) != want[id] {
			t.Errorf("mailbox %s holds %d messages, want %d", id, len(ds), want[id])
		}
		for i, d := range ds {
			if d.Seq != uint64(i+1) {
				t.Errorf("mailbox %s: delivery %d has seq %d, want %d (gap or duplicate)", id, i, d.Seq, i+1)
				break
			}
		}
		if n := lastSeq(t, s, id); n != uint64(want[id]) {
			t.Errorf("LastSeq(%s) = %d, want %d", id, n, want[id])
		}
		if n := unacked(t, s, id); n != want[id] {
			t.Errorf("Unacked(%s) = %d, want %d", id, n, want[id])
		}
	}
	if total == 0 {
		t.Fatal("no messages stored")
	}
}
