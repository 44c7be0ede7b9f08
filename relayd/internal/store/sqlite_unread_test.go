package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// The unread counts and last reads ReadStates answers from memory match
// what the file says after every kind of write — sends, acks, reads by id
// and by seq, clears, prunes, a failed commit — and after a reopen.
func TestSQLiteReadStatesMatchFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openSQLite(t, dir)
	clients := []string{"a", "b", "c"}
	check := func(step string) {
		t.Helper()
		got, err := s.ReadStates(ctx, clients)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range clients {
			var unread int
			var last int64
			if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM mailbox WHERE recipient = ? AND read_at = 0`, id).Scan(&unread); err != nil {
				t.Fatal(err)
			}
			err := s.r.QueryRowContext(ctx, `SELECT last_read FROM reads WHERE recipient = ?`, id).Scan(&last)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				t.Fatal(err)
			}
			if got[id].Unread != unread || !got[id].LastRead.Equal(fromNanos(last)) {
				t.Errorf("%s: ReadStates[%s] = %+v, the file says %d unread, last read %v", step, id, got[id], unread, fromNanos(last))
			}
		}
	}
	at := base.Add(time.Hour)
	markRead := func(id string, ids []string, upto uint64) {
		t.Helper()
		at = at.Add(time.Minute)
		if _, err := s.MarkRead(ctx, id, ids, upto, at); err != nil {
			t.Fatal(err)
		}
	}

	old := newMsg("x", "a", "b")
	send(t, s, old)
	var toA []Message
	for range 4 {
		m := newMsg("x", "a")
		send(t, s, m)
		toA = append(toA, m)
	}
	send(t, s, newMsg("a", "b", "c"))
	check("sent")
	mustAck(t, s, "a", 4) // seq 4 stays unread: Clear drops it below
	check("acked")
	markRead("a", []string{toA[0].ID, toA[0].ID, "0193a1b2-0000-7000-8000-999999999999"}, 0)
	markRead("b", []string{toA[1].ID}, 0) // not in b's mailbox
	check("read by id")
	markRead("a", nil, 2)
	markRead("a", []string{toA[1].ID}, 2) // already read
	check("read up to a seq")

	fail := func(*sql.Tx) error { return errors.New("injected: disk I/O error") }
	s.hookInTx.Store(&fail)
	if _, err := s.MarkRead(ctx, "a", []string{toA[3].ID}, 0, at.Add(time.Hour)); err == nil {
		t.Fatal("MarkRead committed while writes fail")
	}
	s.hookInTx.Store(nil)
	check("a failed read")

	if _, err := s.Clear(ctx, "a", false); err != nil { // a's acked entries: read and unread
		t.Fatal(err)
	}
	check("cleared the read history")
	send(t, s, newMsg("x", "a", "b", "c"))
	if _, err := s.Prune(ctx, old.TS.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	check("pruned")
	if _, err := s.Clear(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	check("cleared unread too")
	send(t, s, newMsg("x", "b"))
	markRead("c", nil, 1)
	check("after the clears")

	before, _ := s.ReadStates(ctx, clients)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSQLite(t, dir)
	check("reopened")
	after, _ := s.ReadStates(ctx, clients)
	for _, id := range clients {
		if before[id] != after[id] {
			t.Errorf("%s: %+v before the reopen, %+v after", id, before[id], after[id])
		}
	}
}
