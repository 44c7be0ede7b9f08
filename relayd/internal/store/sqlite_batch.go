package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Statements the committer runs for every batch, prepared once at open.
const (
	qPutBox = `INSERT INTO boxes(recipient, last_seq, acked) VALUES (?, ?, ?)
		ON CONFLICT(recipient) DO UPDATE SET last_seq = excluded.last_seq, acked = excluded.acked`
	// first_seen keeps its first value; the rest is the latest word.
	qTouch = `INSERT INTO sessions(id, host, pid, cwd, agent, label, first_seen, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET host = excluded.host, pid = excluded.pid, cwd = excluded.cwd,
			agent = excluded.agent, label = excluded.label, last_seen = excluded.last_seen`
)

// A batch's messages and mailbox entries go in with multi-row INSERTs, in
// chunks of these sizes: one statement for many rows costs far less than
// one per row. Not larger: the driver matches each of a statement's
// parameters to its argument by a scan of the arguments, so binding costs
// grow with the square of the chunk (a chunk of 64 messages, 512
// parameters, spent more in binding than 16 rows save in statements:
// BenchmarkSubmitFanIn, 12% less CPU per message with 16).
var chunkSizes = []int{16, 4, 1}

const (
	msgColumns   = 9 // rid, id, sender, recipients, body, ts, reply_to, thread, sent_ref
	entryColumns = 3 // recipient, seq, msg
)

func qPutMessages(n int) string {
	return "INSERT INTO messages(rid, id, sender, recipients, body, ts, reply_to, thread, sent_ref) VALUES " +
		strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?), ", n-1) + "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
}

func qPutEntries(n int) string {
	return "INSERT INTO mailbox(recipient, seq, msg) VALUES " + strings.Repeat("(?, ?, ?), ", n-1) + "(?, ?, ?)"
}

// batch is the state of one write transaction.
type batch struct {
	s     *SQLite
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	boxes map[string]*boxState // mailboxes changed in this transaction
	dirty map[string]bool      // boxes rows to write before COMMIT
	added []string             // session ids touched

	// Rows that Append queued and writeRows has not inserted yet.
	msgRows   []any
	msgIDs    []string
	entryRows []any
	nextRid   int64

	// What the cache and the ref window learn once the batch commits.
	appended  []appended
	refAdds   map[refKey]refRec
	refN      map[string]int64 // each client's newest ref n in this batch
	forget    bool             // a Clear or Prune ran: drop the recent cache
	resetRefs bool             // a Prune ran: reload the ref windows
}

// writeRows inserts the queued messages and mailbox entries. Ops that read
// or delete mailbox rows call it first.
func (b *batch) writeRows() error {
	if err := b.insertChunks(b.msgRows, msgColumns, qPutMessages); err != nil {
		if isConstraint(err) && len(b.msgIDs) == 1 {
			return fmt.Errorf("a message with id %s is already stored: %w", b.msgIDs[0], err)
		}
		return fmt.Errorf("insert %d messages: %w", len(b.msgIDs), err)
	}
	if err := b.insertChunks(b.entryRows, entryColumns, qPutEntries); err != nil {
		return fmt.Errorf("insert %d mailbox entries: %w", len(b.entryRows)/entryColumns, err)
	}
	b.msgRows, b.msgIDs, b.entryRows = b.msgRows[:0], b.msgIDs[:0], b.entryRows[:0]
	return nil
}

func (b *batch) insertChunks(rows []any, cols int, query func(int) string) error {
	for len(rows) > 0 {
		n := len(rows) / cols
		for _, c := range chunkSizes {
			if c <= n {
				n = c
				break
			}
		}
		if _, err := b.exec(query(n), rows[:n*cols]...); err != nil {
			return err
		}
		rows = rows[n*cols:]
	}
	return nil
}

func (b *batch) exec(query string, args ...any) (sql.Result, error) {
	st := b.stmts[query]
	if st == nil {
		// Statements are prepared once on the writer pool and bound to
		// each transaction; SQLite keeps the compiled form per connection.
		if ps := b.s.prepared[query]; ps != nil {
			st = b.tx.StmtContext(b.ctx, ps)
		} else {
			var err error
			if st, err = b.tx.PrepareContext(b.ctx, query); err != nil {
				return nil, err
			}
		}
		b.stmts[query] = st
	}
	return st.ExecContext(b.ctx, args...)
}

// box returns the mailbox as this transaction sees it; ok is false for a
// mailbox that does not exist (and create was not asked).
func (b *batch) box(id string, create bool) (*boxState, bool) {
	if bx := b.boxes[id]; bx != nil {
		return bx, true
	}
	b.s.mu.RLock()
	st, ok := b.s.boxes[id]
	b.s.mu.RUnlock()
	if !ok && !create {
		return nil, false
	}
	bx := &st
	b.boxes[id] = bx
	if !ok {
		b.dirty[id] = true
	}
	return bx, true
}

// flush writes the changed boxes rows.
func (b *batch) flush() error {
	for id := range b.dirty {
		bx := b.boxes[id]
		if _, err := b.exec(qPutBox,
			id, int64(bx.last), int64(bx.acked)); err != nil {
			return fmt.Errorf("update mailbox %s: %w", id, err)
		}
	}
	clear(b.dirty)
	return nil
}
