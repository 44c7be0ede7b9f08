//go:build scaletmp

package store

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

func TestScaleTmp(t *testing.T) {
	ctx := context.Background()
	dir := "/tmp/scale"
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fill := `BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000000)
INSERT INTO messages(rid, id, sender, recipients, body, ts, reply_to, thread)
SELECT i, printf('0190a1b2-0000-7000-8000-%012d', i), 's' || (i % 10), '["r' || (i % 20) || '"]', 'body body body body body body body body ' || i, 1700000000000000000 + i*1000000, '', '' FROM n;
INSERT INTO mailbox(recipient, seq, msg) SELECT 'r' || (rid % 20), (rid / 20) + 1, rid FROM messages;
INSERT INTO boxes(recipient, last_seq, acked) SELECT recipient, max(seq), max(seq) - 500 FROM mailbox GROUP BY recipient;
COMMIT;`
	start := time.Now()
	if out, err := exec.Command("sqlite3", dir+"/relay.db", fill).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	t.Logf("fill: %v", time.Since(start))
	start = time.Now()
	s, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("open with 1M messages: %v", time.Since(start))
	start = time.Now()
	for range 100 {
		ds, err := s.Pending(ctx, "r7", 0, 100)
		if err != nil || len(ds) != 100 {
			t.Fatal(len(ds), err)
		}
	}
	t.Logf("Pending(100): %v each", time.Since(start)/100)
	start = time.Now()
	for i := range 2000 {
		m := newMsg("s1", "r7")
		m.ID = "0199" + m.ID[4:]
		if _, err := s.Append(ctx, m, []string{"r" + string(rune('0'+i%10))}, 10000); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("Append (1 writer): %v each", time.Since(start)/2000)
	start = time.Now()
	h, more, err := s.History(ctx, HistoryQuery{Client: "r7", Limit: 50})
	t.Logf("History(r7, 50): %v (%d, more=%v, err=%v)", time.Since(start), len(h), more, err)
	start = time.Now()
	h, more, err = s.History(ctx, HistoryQuery{Client: "s1", With: "r1", Limit: 50})
	t.Logf("History(s1 with r1, 50): %v (%d, more=%v, err=%v)", time.Since(start), len(h), more, err)
	start = time.Now()
	if err := s.Ack(ctx, "r7", 49000); err != nil {
		t.Fatal(err)
	}
	t.Logf("Ack: %v", time.Since(start))
	start = time.Now()
	n, err := s.Prune(ctx, time.Unix(0, 1700000000000000000+100000*1000000))
	t.Logf("Prune 100k: %v (%d, %v)", time.Since(start), n, err)
}
