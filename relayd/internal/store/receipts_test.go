package store

import (
	"context"
	"testing"
	"time"
)

// Receipts: stored → delivered (acked) → read, by id and by seq; only the
// sender may ask; unread counts and last read per client.
func TestReceipts(t *testing.T) {
	ctx := context.Background()
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.open(t)
			r := s
			m1, m2, m3 := newMsg("a", "b", "c"), newMsg("a", "b"), newMsg("a", "b")
			send(t, s, m1)
			send(t, s, m2)
			send(t, s, m3)
			state := func(id, to string) Receipt {
				t.Helper()
				rs, err := r.Receipts(ctx, "a", []string{id})
				if err != nil {
					t.Fatal(err)
				}
				for _, x := range rs {
					if x.To == to {
						return x
					}
				}
				t.Fatalf("no receipt for %s to %s in %+v", id, to, rs)
				return Receipt{}
			}
			if x := state(m1.ID, "b"); x.DeliveredOK || !x.Read.IsZero() || !x.Stored.Equal(m1.TS) {
				t.Fatalf("fresh: %+v", x)
			}
			if err := s.Ack(ctx, "b", 1); err != nil {
				t.Fatal(err)
			}
			if x := state(m1.ID, "b"); !x.DeliveredOK || x.Delivered.IsZero() || !x.Read.IsZero() {
				t.Fatalf("acked: %+v", x)
			}
			at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
			if n, err := r.MarkRead(ctx, "b", []string{m2.ID, m1.ID}, 0, at); err != nil || n != 2 {
				t.Fatalf("MarkRead = %d, %v", n, err)
			}
			if n, _ := r.MarkRead(ctx, "b", []string{m1.ID}, 0, at.Add(time.Hour)); n != 0 {
				t.Fatalf("MarkRead again marked %d", n)
			}
			if x := state(m1.ID, "b"); !x.Read.Equal(at) {
				t.Fatalf("read: %+v", x)
			}
			if x := state(m2.ID, "b"); !x.Read.Equal(at) || !x.DeliveredOK {
				t.Fatalf("read before ack counts as delivered: %+v", x)
			}
			if x := state(m1.ID, "c"); x.DeliveredOK || !x.Read.IsZero() {
				t.Fatalf("c's copy: %+v", x)
			}
			rs, _ := r.Receipts(ctx, "a", []string{m3.ID, m1.ID})
			if len(rs) != 3 || rs[0].MsgID != m3.ID || rs[1].To != "b" || rs[2].To != "c" {
				t.Fatalf("order: %+v", rs)
			}
			if rs, _ := r.Receipts(ctx, "b", []string{m1.ID}); len(rs) != 0 {
				t.Fatalf("b sees receipts of a's message: %+v", rs)
			}
			st, err := r.ReadStates(ctx, []string{"b", "c", "nobody"})
			if err != nil {
				t.Fatal(err)
			}
			if st["b"].Unread != 1 || !st["b"].LastRead.Equal(at.Add(time.Hour)) || st["c"].Unread != 1 || !st["c"].LastRead.IsZero() {
				t.Fatalf("read states %+v", st)
			}
			if _, ok := st["nobody"]; ok && st["nobody"].Unread != 0 {
				t.Fatalf("nobody: %+v", st["nobody"])
			}
			// By seq: everything up to 3.
			if n, _ := r.MarkRead(ctx, "b", nil, 3, at.Add(2*time.Hour)); n != 1 {
				t.Fatalf("MarkRead upto marked %d", n)
			}
			if st, _ := r.ReadStates(ctx, []string{"b"}); st["b"].Unread != 0 {
				t.Fatalf("after upto: %+v", st)
			}
		})
	}
}

// A store written by a relayd without receipts (schema 2) is migrated:
// acked mail counts as read at its own time, unacked mail as unread.
func TestSQLiteMigratesToReceipts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := dbAtSchema(t, dir, 2)
	ts := base.UnixNano()
	for _, q := range []string{
		`INSERT INTO messages(rid, id, sender, recipients, body, ts, reply_to, thread) VALUES
			(1, '0193a1b2-0000-7000-8000-900000000001', 'a', '["b"]', 'old, read', ?1, '', ''),
			(2, '0193a1b2-0000-7000-8000-900000000002', 'a', '["b"]', 'old, unread', ?1, '', '')`,
		`INSERT INTO boxes(recipient, last_seq, acked) VALUES ('b', 2, 1)`,
		`INSERT INTO mailbox(recipient, seq, msg) VALUES ('b', 1, 1), ('b', 2, 2)`,
		`PRAGMA user_version = 2`,
	} {
		if _, err := db.Exec(q, ts); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s := openSQLite(t, dir)
	rs, err := s.Receipts(ctx, "a", []string{"0193a1b2-0000-7000-8000-900000000001", "0193a1b2-0000-7000-8000-900000000002"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || !rs[0].Read.Equal(base) || !rs[0].DeliveredOK || !rs[1].Read.IsZero() || rs[1].DeliveredOK {
		t.Fatalf("migrated receipts: %+v", rs)
	}
	if st, _ := s.ReadStates(ctx, []string{"b"}); st["b"].Unread != 1 {
		t.Fatalf("migrated unread: %+v", st)
	}
	if got := pending(t, s, "b", 0, 0); len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("pending after migration: %+v", got)
	}
}
