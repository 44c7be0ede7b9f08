package store

import (
	"context"
	"testing"
)

// testHistoryThread: a thread's history holds only that thread, only what
// the client may see (never another pair's direct messages in the same
// thread), oldest first, and pages like the rest of History.
func testHistoryThread(t *testing.T, s Store) {
	conversation(t, s) // unthreaded noise
	add := func(body, thread string, m Message, recipients ...string) Message {
		m.Body, m.Thread = body, thread
		send(t, s, m, recipients...)
		return m
	}
	task := add("task", "auth", newMsg("a", "b"))
	add("other thread", "docs", newMsg("a", "b"))
	ack := add("on it", "auth", newMsg("b", "a"))
	add("aside to c", "auth", newMsg("b", "c")) // a may not see it
	add("all: auth done soon", "auth", newMsg("b", "*"), "a", "c")
	done := add("done", "auth", newMsg("b", "a"))

	page, more := history(t, s, HistoryQuery{Client: "a", Thread: "auth"})
	eq(t, "a's auth thread", bodies(page), []string{"task", "on it", "all: auth done soon", "done"})
	if more {
		t.Error("more = true for the whole thread")
	}
	page, _ = history(t, s, HistoryQuery{Client: "b", Thread: "auth"})
	eq(t, "b's auth thread", bodies(page), []string{"task", "on it", "aside to c", "all: auth done soon", "done"})
	page, _ = history(t, s, HistoryQuery{Client: "c", Thread: "auth"})
	eq(t, "c's auth thread", bodies(page), []string{"aside to c", "all: auth done soon"})
	page, _ = history(t, s, HistoryQuery{Client: "a", Thread: "nope"})
	eq(t, "no such thread", bodies(page), []string{})

	page, more = history(t, s, HistoryQuery{Client: "a", Thread: "auth", Limit: 2})
	eq(t, "newest page", bodies(page), []string{"all: auth done soon", "done"})
	if !more {
		t.Error("more = false with older messages in the thread")
	}
	page, _ = history(t, s, HistoryQuery{Client: "a", Thread: "auth", Limit: 2, Before: page[0].ID})
	eq(t, "older page", bodies(page), []string{"task", "on it"})
	page, _ = history(t, s, HistoryQuery{Client: "a", Thread: "auth", After: task.ID, Before: done.ID})
	eq(t, "between", bodies(page), []string{"on it", "all: auth done soon"})
	page, _ = history(t, s, HistoryQuery{Client: "a", Thread: "auth", After: ack.ID, Limit: 1})
	eq(t, "forward", bodies(page), []string{"all: auth done soon"})
	page, _ = history(t, s, HistoryQuery{Client: "a", Thread: "auth", With: "b"})
	eq(t, "with b", bodies(page), []string{"task", "on it", "all: auth done soon", "done"})

	// Cleared sends leave the sender's view of the thread.
	if _, err := s.Clear(context.Background(), "a", false); err != nil {
		t.Fatal(err)
	}
	mustAck(t, s, "a", lastSeq(t, s, "a"))
	if _, err := s.Clear(context.Background(), "a", false); err != nil {
		t.Fatal(err)
	}
	page, _ = history(t, s, HistoryQuery{Client: "a", Thread: "auth"})
	eq(t, "after clear", bodies(page), []string{})
	page, _ = history(t, s, HistoryQuery{Client: "b", Thread: "auth"})
	if len(page) != 5 {
		t.Errorf("b's thread after a cleared: %v, want all 5 kept", bodies(page))
	}
}

// A store written before threads were indexed (schema 3) gains the index
// when a newer relayd opens it, and keeps its messages.
func TestSQLiteMigratesThreadIndex(t *testing.T) {
	dir := t.TempDir()
	db := dbAtSchema(t, dir, 3)
	m := newMsg("a", "b")
	m.Thread = "auth"
	for _, q := range []string{
		"PRAGMA user_version = 3",
		"INSERT INTO boxes(recipient, last_seq, acked) VALUES ('b', 0, 0)",
		"INSERT INTO mailbox(recipient, seq, msg) VALUES ('b', 1, 1)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := db.Exec(`INSERT INTO messages(rid, id, sender, recipients, body, ts, reply_to, thread)
		VALUES (1, ?, 'a', '["b"]', ?, ?, '', ?)`, m.ID, m.Body, m.TS.UnixNano(), m.Thread); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := openSQLite(t, dir)
	var n int
	if err := s.r.QueryRow("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'messages_by_thread'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("thread index after migration: %d %v", n, err)
	}
	page, _ := history(t, s, HistoryQuery{Client: "b", Thread: "auth"})
	eq(t, "thread after migration", ids(page), []string{m.ID})
}

// BenchmarkHistoryThread reads one thread's newest page out of a store where
// it is 1% of the messages: the thread index makes it a range read.
func BenchmarkHistoryThread(b *testing.B) {
	for _, k := range storeKinds {
		b.Run(k.name, func(b *testing.B) {
			s := k.open(b)
			ctx := context.Background()
			for i := range 10000 {
				m := benchMsg(uint64(i), "r")
				if i%100 == 0 {
					m.Thread = "auth"
				}
				if _, err := AppendWait(ctx, s, m, []string{"r"}, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				page, _, err := s.History(ctx, HistoryQuery{Client: "r", Thread: "auth", Limit: 50})
				if err != nil || len(page) != 50 {
					b.Fatalf("History = %d, %v", len(page), err)
				}
			}
		})
	}
}
