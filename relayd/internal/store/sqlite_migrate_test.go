package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
)

// dbAtSchema is a store file in dir as a relayd of schema version n left
// it: the first n migration steps, run on a raw connection.
func dbAtSchema(t *testing.T, dir string, n int) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations[:n] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("schema step %d: %v", i+1, err)
		}
	}
	return db
}

// A store written by the relayd before refs moved into the messages' rows
// (schema version 6, refs in a table of their own, a search queue) opens
// with everything still there: its messages, mailboxes and acks, the refs
// of its stored messages, so a retry sent after the upgrade is still
// answered with the first id and stored once, and its search index, so
// that what was indexed is found and leaves the index with its message.
func TestSQLiteMigratesRefsTable(t *testing.T) {
	dir := t.TempDir()
	db := dbAtSchema(t, dir, 6)
	d1, d2, gone := digest("first"), digest("second"), digest("pruned")
	// What relayd at schema 6 wrote: "first" from a to b and c (c was
	// full), indexed by a search; "second" from a to b, a legacy message
	// from z to b (no ref), both queued for the index; and the ref of a
	// message since pruned. b acked seq 1.
	for _, q := range []string{
		"PRAGMA user_version = 6",
		`INSERT INTO messages(rid, id, sender, recipients, body, ts, reply_to, thread) VALUES
			(1, 'id-first', 'a', '["b","c"]', 'first', 1000, '', '')`,
		"INSERT INTO messages_fts(rowid, body) SELECT rid, body FROM messages WHERE rid IN (SELECT rid FROM search_todo)",
		"DELETE FROM search_todo",
		`INSERT INTO messages(rid, id, sender, recipients, body, ts, reply_to, thread) VALUES
			(2, 'id-second', 'a', '["b"]', 'second', 2000, '', 't1'),
			(3, 'id-legacy', 'z', '["b"]', 'legacy', 3000, '', '')`,
		"INSERT INTO mailbox(recipient, seq, msg) VALUES ('b', 1, 1), ('b', 2, 2), ('b', 3, 3)",
		"INSERT INTO boxes(recipient, last_seq, acked) VALUES ('b', 1, 1), ('c', 0, 0)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, r := range []struct {
		ref    string
		n      int
		digest [32]byte
		id     string
		ts     int64
		to     string
		seqs   string
	}{
		{"r1", 1, d1, "id-first", 1000, `["b","c"]`, "[1,0]"},
		{"r2", 2, d2, "id-second", 2000, `["b"]`, "[2]"},
		{"r0", 0, gone, "id-pruned", 500, `["b"]`, "[7]"},
	} {
		if _, err := db.Exec("INSERT INTO refs(client, ref, n, digest, msg_id, ts, recipients, seqs) VALUES ('a', ?, ?, ?, ?, ?, ?, ?)",
			r.ref, r.n, r.digest[:], r.id, r.ts, r.to, r.seqs); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := openSQLite(t, dir)
	var v int
	if err := s.r.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version %d (%v), want %d", v, err, len(migrations))
	}
	if err := s.r.QueryRow("SELECT count(*) FROM sqlite_schema WHERE name = 'refs'").Scan(&v); err != nil || v != 0 {
		t.Errorf("the refs table is still there (%d, %v)", v, err)
	}
	page, _ := history(t, s, HistoryQuery{Client: "b"})
	eq(t, "b's history", bodies(page), []string{"first", "second", "legacy"})
	if page[1].Thread != "t1" || !slices.Equal(page[0].To, []string{"b", "c"}) {
		t.Errorf("messages changed: %+v", page)
	}
	// The ack of seq 1 holds.
	eq(t, "b's mailbox", seqs(pending(t, s, "b", 0, 0)), []uint64{2, 3})
	if u := unacked(t, s, "b"); u != 2 {
		t.Errorf("Unacked(b) = %d, want 2", u)
	}

	// Retries of both stored sends: the first outcome, nothing stored.
	r := <-appendAsync(s, newMsg("a", "b", "c"), &SendRef{Ref: "r1", Digest: d1}, "b", "c")
	if r.err != nil || r.dup == nil || r.dup.ID != "id-first" || r.dup.TS.UnixNano() != 1000 ||
		!slices.Equal(r.dup.Recipients, []string{"b", "c"}) || !slices.Equal(r.dup.Slots, []Slot{{Seq: 1}, {Full: true}}) {
		t.Errorf("retry of r1 = %+v (dup %+v), want a dup of id-first, seqs 1 and full", r, r.dup)
	}
	r = <-appendAsync(s, newMsg("a", "b"), &SendRef{Ref: "r2", Digest: d2}, "b")
	if r.err != nil || r.dup == nil || r.dup.ID != "id-second" || !slices.Equal(r.dup.Slots, []Slot{{Seq: 2}}) {
		t.Errorf("retry of r2 = %+v (dup %+v), want a dup of id-second at seq 2", r, r.dup)
	}
	// The ref of a message that is gone is not kept: a send under it is new.
	r = <-appendAsync(s, newMsg("a", "b"), &SendRef{Ref: "r0", Digest: gone}, "b")
	if r.err != nil || r.dup != nil || r.slots[0].Seq != 4 {
		t.Errorf("send under the pruned message's ref = %+v, want stored at seq 4", r)
	}
	eq(t, "b's mailbox", seqs(pending(t, s, "b", 0, 0)), []uint64{2, 3, 4})

	// And after another reopen, on the new schema.
	s.Close()
	s = openSQLite(t, dir)
	r = <-appendAsync(s, newMsg("a", "b"), &SendRef{Ref: "r2", Digest: d2}, "b")
	if r.dup == nil || r.dup.ID != "id-second" {
		t.Errorf("retry of r2 after a reopen = %+v, want a dup of id-second", r)
	}
	r = <-appendAsync(s, newMsg("a", "b"), &SendRef{Ref: "r0", Digest: gone}, "b")
	if r.dup == nil || !slices.Equal(r.dup.Slots, []Slot{{Seq: 4}}) {
		t.Errorf("retry of the new r0 after a reopen = %+v, want a dup at seq 4", r)
	}
	eq(t, "b's mailbox", seqs(pending(t, s, "b", 0, 0)), []uint64{2, 3, 4})
	ctx := context.Background()
	for _, w := range []string{"first", "second", "legacy"} {
		if found, _, err := s.Search(ctx, SearchQuery{Text: w}); err != nil || len(found) != 1 || found[0].Body != w {
			t.Errorf("Search(%s) after the upgrade = %+v, %v; want its message", w, found, err)
		}
	}
	// Expiring "first" (indexed before the upgrade) and "second" (after)
	// takes them out of the index, and leaves it sound.
	if _, err := s.Prune(ctx, fromNanos(2500)); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"first", "second"} {
		if found, _, err := s.Search(ctx, SearchQuery{Text: w}); err != nil || len(found) != 0 {
			t.Errorf("Search(%s) after it expired = %+v, %v; want nothing", w, found, err)
		}
	}
	s.Close()
	db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')"); err != nil {
		t.Errorf("search index after the upgrade: %v", err)
	}
}
