package server

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// holdWriteLock takes the SQLite file's write lock from another connection
// (as a backup or an sqlite3 shell would) and releases it after d: the
// relay's commits wait meanwhile.
func holdWriteLock(t *testing.T, dir string, d time.Duration) {
	t.Helper()
	// Waits for a commit of the relay's under way (a hello's session row
	// is written in the background), as an sqlite3 shell's .timeout would.
	db, err := sql.Open("sqlite", filepath.Join(dir, store.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(d, func() {
		conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		db.Close()
	})
}

// A client that says hello with provisional gets a message before its
// commit, marked provisional, and the relay's ack once it is committed,
// before accepted reaches the sender; a client that does not gets it only
// committed, unmarked, and never an ack.
func TestProvisionalHandOff(t *testing.T) {
	const delay = 300 * time.Millisecond
	r := startRelayOn(t, "sqlite") // holdWriteLock holds SQLite's commits
	a, _ := r.connect("A", 0)
	p := r.connectProvisional("P", 0)
	c, _ := r.connect("C", 0)

	holdWriteLock(t, r.dir, delay)
	start := time.Now()
	a.send(&protocol.Send{Ref: "1", To: protocol.Recipients{"P", "C"}, Body: "hello"})
	m := expect[*protocol.Message](p)
	early := time.Since(start)
	if !m.Provisional || m.Seq != 1 {
		t.Fatalf("P got %+v after %s, want seq 1 marked provisional", m, early)
	}
	if early >= delay {
		t.Errorf("the provisional message took %s, as long as the commit (%s)", early, delay)
	}
	ack := expect[*protocol.Ack](p)
	if ack.Upto != 1 || time.Since(start) < delay {
		t.Fatalf("P got ack %+v after %s, want upto 1 after the commit (%s)", ack, time.Since(start), delay)
	}
	if acc := expect[*protocol.Accepted](a); acc.ID != m.ID {
		t.Fatalf("accepted %+v, want id %s", acc, m.ID)
	}
	cm := expect[*protocol.Message](c)
	if cm.Provisional || cm.ID != m.ID || time.Since(start) < delay {
		t.Fatalf("C got %+v after %s, want the committed message after %s", cm, time.Since(start), delay)
	}

	// A burst: every seq arrives once, in order, and the acks cover them
	// all; an ack always comes before a committed message that follows
	// provisional ones.
	const n = 50
	for i := range n {
		a.send(&protocol.Send{Ref: fmt.Sprint("b", i), To: protocol.Recipients{"P"}, Body: fmt.Sprint(i)})
	}
	var told, acked, next uint64 = 1, 1, 2
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for told < n+1 && ctx.Err() == nil {
		switch f := p.next().(type) {
		case *protocol.Message:
			if f.Seq != next {
				t.Fatalf("seq %d, want %d", f.Seq, next)
			}
			if !f.Provisional && told < f.Seq-1 {
				t.Fatalf("committed seq %d arrived before the ack of seq %d (told %d)", f.Seq, f.Seq-1, told)
			}
			if !f.Provisional {
				told = f.Seq
			}
			next++
		case *protocol.Ack:
			if f.Upto <= acked || f.Upto >= next {
				t.Fatalf("ack upto %d, want above the last ack (%d) and below %d", f.Upto, acked, next)
			}
			acked, told = f.Upto, max(told, f.Upto)
		}
	}
	if told != n+1 {
		t.Fatalf("told %d, want %d", told, n+1)
	}
}
