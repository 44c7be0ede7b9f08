package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// Search on both stores: every word must appear, any case; newest matches
// win the page and come oldest first; paging back with Before; text that
// would be FTS5 syntax is only words; pruned messages are gone from it.
func TestSearch(t *testing.T) {
	ctx := context.Background()
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.open(t)
			se := s
			bodies := []string{
				"The Migration of the store is done",
				"run make test after the migration",
				"lunch?",
				`NEAR("migration" OR col:store) -- not syntax`,
				"migration review: looks good",
			}
			ids := make([]string, len(bodies))
			for i, b := range bodies {
				m := newMsg("A", "B")
				m.Body = b
				m.TS = time.Now().Add(time.Duration(i-10) * time.Minute)
				send(t, s, m)
				ids[i] = m.ID
			}
			find := func(q SearchQuery) (out []string, more bool) {
				t.Helper()
				ms, more, err := se.Search(ctx, q)
				if err != nil {
					t.Fatalf("Search(%+v): %v", q, err)
				}
				for _, m := range ms {
					for i, id := range ids {
						if m.ID == id {
							out = append(out, fmt.Sprint(i))
						}
					}
				}
				return out, more
			}
			for _, tc := range []struct {
				q    SearchQuery
				want string
				more bool
			}{
				{SearchQuery{Text: "MIGRATION"}, "[0 1 3 4]", false},
				{SearchQuery{Text: "migration store"}, "[0 3]", false},
				{SearchQuery{Text: "migration", Limit: 2}, "[3 4]", true},
				{SearchQuery{Text: "migration", Limit: 2, Before: ids[3]}, "[0 1]", false},
				{SearchQuery{Text: `col:store"`}, "[3]", false}, // two words: col and store
				{SearchQuery{Text: "lunch"}, "[2]", false},
				{SearchQuery{Text: "  ?! "}, "[]", false},
				{SearchQuery{Text: "nothing-like-this"}, "[]", false},
			} {
				got, more := find(tc.q)
				if fmt.Sprint(got) != tc.want && !(tc.want == "[]" && got == nil) || more != tc.more {
					t.Errorf("Search(%+v) = %v more=%v, want %s more=%v", tc.q, got, more, tc.want, tc.more)
				}
			}
			if _, err := s.Prune(ctx, time.Now().Add(-7*time.Minute-30*time.Second)); err != nil {
				t.Fatal(err)
			}
			if got, _ := find(SearchQuery{Text: "migration"}); fmt.Sprint(got) != "[3 4]" {
				t.Errorf("after pruning the first three: Search(migration) = %v, want [3 4]", got)
			}
		})
	}
}

// The SQLite store finds prefixes and ignores accents (its tokenizer).
func TestSQLiteSearchPrefixAndAccents(t *testing.T) {
	s := openSQLite(t, t.TempDir())
	m := newMsg("A", "B")
	m.Body = "Résumé of the refactoring"
	send(t, s, m)
	for _, q := range []string{"resume", "refactor", "RÉSUMÉ of"} {
		ms, _, err := s.Search(context.Background(), SearchQuery{Text: q})
		if err != nil || len(ms) != 1 {
			t.Errorf("Search(%q) = %d messages, %v; want the one", q, len(ms), err)
		}
	}
}

// A store written before the index existed (schema 4) is indexed when it
// is opened: its old messages are found.
func TestSQLiteSearchBackfill(t *testing.T) {
	dir := t.TempDir()
	db := dbAtSchema(t, dir, 4)
	for _, q := range []string{
		`INSERT INTO messages(rid, id, sender, recipients, body, ts, reply_to, thread) VALUES
			(1, '0193a1b2-0000-7000-8000-900000000001', 'a', '["b"]', 'the flaky test is TestRetry', ?1, '', ''),
			(2, '0193a1b2-0000-7000-8000-900000000002', 'a', '["b"]', 'lunch?', ?1, '', '')`,
		`INSERT INTO boxes(recipient, last_seq, acked) VALUES ('b', 2, 0)`,
		`INSERT INTO mailbox(recipient, seq, msg, read_at) VALUES ('b', 1, 1, 0), ('b', 2, 2, 0)`,
		`PRAGMA user_version = 4`,
	} {
		if _, err := db.Exec(q, base.UnixNano()); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s := openSQLite(t, dir)
	ms, _, err := s.Search(context.Background(), SearchQuery{Text: "flaky testretry"})
	if err != nil || len(ms) != 1 || ms[0].ID != "0193a1b2-0000-7000-8000-900000000001" {
		t.Fatalf("Search of a message stored before the index: %+v, %v", ms, err)
	}
	// And a new one is indexed by the trigger.
	m := newMsg("b", "a")
	m.Body = "fixed the flaky one"
	send(t, s, m)
	if ms, _, _ := s.Search(context.Background(), SearchQuery{Text: "flaky"}); len(ms) != 2 {
		t.Fatalf("Search(flaky) after a new message = %d messages, want 2", len(ms))
	}
}

// Messages deleted before any search indexed them leave nothing behind; a
// store emptied by retention and reopened (message keys start over) still
// finds what comes next.
func TestSQLiteSearchAfterPruneAndReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		m := newMsg("A", "B")
		m.Body = "old deploy note"
		m.TS = time.Now().Add(-time.Hour)
		send(t, s, m)
	}
	if ms, _, err := s.Search(ctx, SearchQuery{Text: "deploy"}); err != nil || len(ms) != 5 {
		t.Fatalf("Search(deploy) = %d, %v; want 5", len(ms), err)
	}
	m := newMsg("A", "B")
	m.Body = "queued deploy note, never searched before it expires"
	m.TS = time.Now().Add(-time.Hour)
	send(t, s, m)
	if _, err := s.Prune(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openSQLite(t, dir)
	if ms, _, err := s.Search(ctx, SearchQuery{Text: "deploy"}); err != nil || len(ms) != 0 {
		t.Fatalf("Search(deploy) after everything expired = %d, %v; want none", len(ms), err)
	}
	m = newMsg("A", "B")
	m.Body = "new deploy note"
	send(t, s, m)
	if ms, _, err := s.Search(ctx, SearchQuery{Text: "deploy"}); err != nil || len(ms) != 1 || ms[0].Body != "new deploy note" {
		t.Fatalf("Search(deploy) after reopening = %+v, %v; want the new note", ms, err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'note'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the index holds %d rows for 'note' (%v), want 1: deleted messages left entries behind", n, err)
	}
}

// Memory's search (the journal store's) looks at its messages a chunk at a
// time; matches far apart across many chunks come out as from one scan:
// newest first within the limit, oldest first on the page, paging on.
func TestMemorySearchAcrossChunks(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	const n, every = 3*scanChunk + 17, 1000
	var match []string
	for i := range n {
		m := newMsg("A", "B")
		m.Body = "filler"
		if i%every == 0 {
			m.Body = fmt.Sprint("needle ", i)
			match = append(match, m.ID)
		}
		send(t, s, m)
	}
	got, more, err := s.Search(ctx, SearchQuery{Text: "needle", Limit: 5})
	if err != nil || !more || len(got) != 5 || got[0].ID != match[len(match)-5] || got[4].ID != match[len(match)-1] {
		t.Fatalf("Search(needle, limit 5) = %d messages, more=%v, %v; want the newest 5 of %d, more", len(got), more, err, len(match))
	}
	older, more, err := s.Search(ctx, SearchQuery{Text: "needle", Limit: 100, Before: got[0].ID})
	if err != nil || more || len(older) != len(match)-5 || older[0].ID != match[0] {
		t.Fatalf("Search(needle, before the page) = %d messages, more=%v, %v; want the %d older ones", len(older), more, err, len(match)-5)
	}
}

// Memory's history and timeline walk its messages a chunk at a time too:
// pages across chunks are the pages one walk would give, forward and back,
// between two cursors, and a mailbox's cleared mail is gone from them.
func TestMemoryHistoryAcrossChunks(t *testing.T) {
	ctx := context.Background()
	s := NewMemory()
	const n = 3*scanChunk + 17
	var all []Message
	for i := range n {
		var m Message
		switch i % 4 {
		case 0:
			m = newMsg("A", "B")
		case 1:
			m = newMsg("C", "A")
		case 2:
			m = newMsg("B", "A")
		default:
			m = newMsg("C", "D")
		}
		send(t, s, m)
		all = append(all, m)
	}
	// ids of the messages of all that keep says, oldest first.
	ids := func(keep func(m Message) bool) []string {
		var out []string
		for _, m := range all {
			if keep(m) {
				out = append(out, m.ID)
			}
		}
		return out
	}
	idsOf := func(ms []Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	seenByB := ids(func(m Message) bool { return m.From == "B" || m.To[0] == "B" })
	forA := ids(func(m Message) bool { return m.To[0] == "A" })
	k := len(seenByB)

	got, more, err := s.History(ctx, HistoryQuery{Client: "B", Limit: 7})
	if err != nil || !more || !slices.Equal(idsOf(got), seenByB[k-7:]) {
		t.Fatalf("History(B, 7) = %v, more=%v, %v; want the newest 7 of %d", idsOf(got), more, err, k)
	}
	// Back across chunks: the oldest two, and nothing more beyond them.
	got, more, err = s.History(ctx, HistoryQuery{Client: "B", Before: seenByB[2], Limit: 50})
	if err != nil || more || !slices.Equal(idsOf(got), seenByB[:2]) {
		t.Fatalf("History(B, before its third) = %v, more=%v, %v; want its first two", idsOf(got), more, err)
	}
	// Forward from the first, across chunks.
	got, more, err = s.History(ctx, HistoryQuery{Client: "B", After: seenByB[0], Limit: 3})
	if err != nil || !more || !slices.Equal(idsOf(got), seenByB[1:4]) {
		t.Fatalf("History(B, after its first, 3) = %v, more=%v, %v; want %v", idsOf(got), more, err, seenByB[1:4])
	}
	// Between two cursors a whole chunk apart: the newest of those between.
	lo, hi := seenByB[10], seenByB[10+scanChunk/2]
	got, more, err = s.History(ctx, HistoryQuery{Client: "B", After: lo, Before: hi, Limit: 4})
	if err != nil || !more || !slices.Equal(idsOf(got), seenByB[10+scanChunk/2-4:10+scanChunk/2]) {
		t.Fatalf("History(B, between) = %v, more=%v, %v", idsOf(got), more, err)
	}
	// The console's timeline between A and B, far back.
	between := ids(func(m Message) bool { return m.From+m.To[0] == "AB" || m.From+m.To[0] == "BA" })
	tl, more, err := s.Timeline(ctx, TimelineQuery{Peer: "B", With: "A", Before: between[5], Limit: 10})
	if err != nil || more || !slices.Equal(idsOf(tl), between[:5]) {
		t.Fatalf("Timeline(B with A, before the sixth) = %v, more=%v, %v; want the first five", idsOf(tl), more, err)
	}
	// A clears its mail, unread too: none of it is in A's history, nor in
	// the console's timeline of A, which keeps A's own sends.
	if _, err := s.Clear(ctx, "A", true); err != nil {
		t.Fatal(err)
	}
	got, _, err = s.History(ctx, HistoryQuery{Client: "A", Limit: 1000})
	if err != nil || len(got) != 0 {
		t.Fatalf("History(A) after its clear = %d messages, %v; want none (its mail and its sends are cleared)", len(got), err)
	}
	tl, _, err = s.Timeline(ctx, TimelineQuery{Peer: "A", Limit: 100})
	if err != nil || len(tl) != 100 || len(forA) == 0 {
		t.Fatalf("Timeline(A) = %d messages, %v", len(tl), err)
	}
	for _, m := range tl {
		if m.From != "A" {
			t.Fatalf("Timeline(A) after A cleared its mail holds %s from %s", m.ID, m.From)
		}
	}
}
