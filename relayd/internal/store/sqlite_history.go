package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/claude-relay/claude-relay/protocol"
)

// History walks what the client may see in storage order (messages.rid),
// newest first (or oldest first when paging forward), and stops once it
// has a page and one more. What the client may see comes from two sources,
// each walked in order along an index: the messages it sent (the
// messages_by_sender index holds (sender, rid)) and its mailbox (whose seq
// grows with rid, since the committer gives out both in the same order).
// The walk merges the two, so a page costs about its own size in reads, at
// any depth and any store size, instead of collecting and sorting
// everything visible.
func (s *SQLite) History(ctx context.Context, q HistoryQuery) ([]Message, bool, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	history := s.history
	if q.Thread != "" {
		history = s.historyThread
	}
	page, more, err := s.readHistory(ctx, q, limit, history)
	if err != nil {
		return nil, false, fmt.Errorf("read history of %s in %s: %w", q.Client, s.path, err)
	}
	return page, more, nil
}

// historyReader reads one page of q between the rids lo and hi (exclusive)
// in tx.
type historyReader func(ctx context.Context, tx *sql.Tx, q HistoryQuery, limit int, lo, hi int64) ([]Message, bool, error)

// readHistory runs read in one read transaction, so that the cursors and
// every source it walks see one snapshot.
func (s *SQLite) readHistory(ctx context.Context, q HistoryQuery, limit int, read historyReader) ([]Message, bool, error) {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback()
	lo, hi, err := cursorBounds(ctx, tx, q)
	if err != nil {
		return nil, false, err
	}
	return read(ctx, tx, q, limit, lo, hi)
}

// cursorBounds turns q's After and Before message ids into the rids a page
// lies strictly between. A cursor need not be a stored message (it may
// have been pruned or cleared): it bounds by id all the same.
func cursorBounds(ctx context.Context, tx *sql.Tx, q HistoryQuery) (lo, hi int64, err error) {
	lo, hi = 0, math.MaxInt64
	if q.After != "" {
		// The newest stored message not newer than the cursor.
		err := tx.QueryRowContext(ctx, "SELECT rid FROM messages WHERE id <= ? ORDER BY id DESC LIMIT 1", q.After).Scan(&lo)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, 0, err
		}
	}
	if q.Before != "" {
		// The oldest stored message not older than the cursor.
		err := tx.QueryRowContext(ctx, "SELECT rid FROM messages WHERE id >= ? ORDER BY id LIMIT 1", q.Before).Scan(&hi)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, 0, err
		}
	}
	return lo, hi, nil
}

// historyChunk is how many rows one step of a source reads.
func historyChunk(limit int) int { return min(max(limit+1, 32), 512) }

func (s *SQLite) history(ctx context.Context, tx *sql.Tx, q HistoryQuery, limit int, lo, hi int64) ([]Message, bool, error) {
	forward := q.After != "" && q.Before == ""
	if lo+1 >= hi {
		return nil, false, nil
	}
	// The mailbox part of (lo, hi) as a seq range [seqLo, seqHi).
	seqLo, err := firstSeqFrom(ctx, tx, q.Client, lo+1)
	if err != nil {
		return nil, false, err
	}
	seqHi := int64(math.MaxInt64)
	if hi != math.MaxInt64 {
		if seqHi, err = firstSeqFrom(ctx, tx, q.Client, hi); err != nil {
			return nil, false, err
		}
	}
	chunk := historyChunk(limit)
	sent := &historySource{query: qHistorySent(forward), chunk: chunk, forward: forward}
	sent.args = func(from int64) []any {
		if forward {
			return []any{q.Client, q.With, max(from, lo), hi, chunk}
		}
		return []any{q.Client, q.With, lo, min(from, hi), chunk}
	}
	sent.pos = func(rid, _ int64) int64 { return rid }
	box := &historySource{query: qHistoryBox(forward), chunk: chunk, forward: forward, withSeq: true}
	box.args = func(from int64) []any {
		if forward {
			return []any{q.Client, q.With, max(from, seqLo-1), seqHi, chunk}
		}
		return []any{q.Client, q.With, seqLo - 1, min(from, seqHi), chunk}
	}
	box.pos = func(_, seq int64) int64 { return seq }
	if forward {
		sent.from, box.from = math.MinInt64, math.MinInt64
	} else {
		sent.from, box.from = math.MaxInt64, math.MaxInt64
	}

	page := historyPage{limit: limit}
	for !page.full() {
		a, err := sent.peek(ctx, tx)
		if err != nil {
			return nil, false, err
		}
		b, err := box.peek(ctx, tx)
		if err != nil {
			return nil, false, err
		}
		var next *historyRow
		switch {
		case a == nil && b == nil:
		case a == nil:
			next = box.take()
		case b == nil:
			next = sent.take()
		case a.rid == b.rid: // a message the client sent to itself
			next = sent.take()
			box.take()
		case (a.rid > b.rid) != forward:
			next = sent.take()
		default:
			next = box.take()
		}
		if next == nil {
			break
		}
		if !page.add(next.msg) {
			break
		}
	}
	msgs, more := page.result(forward)
	return msgs, more, nil
}

// firstSeqFrom is the lowest seq of client's mailbox whose message has rid
// >= rid, or one past the last seq when there is none. Seqs grow with rids
// in a mailbox, so a binary search over seq (each probe one index seek)
// finds it.
func firstSeqFrom(ctx context.Context, tx *sql.Tx, client string, rid int64) (int64, error) {
	const probe = "SELECT seq, msg FROM mailbox WHERE recipient = ? AND seq >= ? ORDER BY seq LIMIT 1"
	var last int64
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM mailbox WHERE recipient = ?", client).Scan(&last); err != nil {
		return 0, err
	}
	// The smallest x in [1, last+1] such that the first entry at or after
	// x holds a message at or after rid (true at last+1, where there is no
	// entry): entries below x all hold older messages.
	lo, hi := int64(1), last+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		var seq, msg int64
		if err := tx.QueryRowContext(ctx, probe, client, mid).Scan(&seq, &msg); err != nil {
			return 0, err // mid <= last, so a row exists
		}
		if msg >= rid {
			hi = mid
		} else {
			lo = seq + 1
		}
	}
	return lo, nil
}

func qHistorySent(forward bool) string {
	cmp, order := "rid < ?4 AND rid > ?3", "DESC"
	if forward {
		cmp, order = "rid > ?3 AND rid < ?4", "ASC"
	}
	return `SELECT g.rid, ` + deliveryColumns + ` FROM messages g
		WHERE g.sender = ?1 AND g.sender_cleared = 0 AND ` + cmp + `
		  AND (?2 = '' OR ?2 = ?1 OR EXISTS (SELECT 1 FROM json_each(g.recipients) WHERE value IN (?2, '*')))
		ORDER BY g.rid ` + order + ` LIMIT ?5`
}

func qHistoryBox(forward bool) string {
	cmp, order := "m.seq < ?4 AND m.seq > ?3", "DESC"
	if forward {
		cmp, order = "m.seq > ?3 AND m.seq < ?4", "ASC"
	}
	return `SELECT m.seq, g.rid, ` + deliveryColumns + ` FROM mailbox m JOIN messages g ON g.rid = m.msg
		WHERE m.recipient = ?1 AND ` + cmp + `
		  AND NOT (g.sender = ?1 AND g.sender_cleared = 1)
		  AND (?2 = '' OR g.sender = ?2 OR (g.sender = ?1 AND EXISTS (
			SELECT 1 FROM json_each(g.recipients) WHERE value IN (?2, '*'))))
		ORDER BY m.seq ` + order + ` LIMIT ?5`
}

type historyRow struct {
	rid int64
	msg Message
}

// historySource is one ordered stream of rows, read a chunk at a time.
type historySource struct {
	query   string
	args    func(from int64) []any // the query's arguments to continue after from
	pos     func(rid, seq int64) int64
	chunk   int
	forward bool
	withSeq bool

	from int64 // position after which to continue
	buf  []historyRow
	done bool
}

func (h *historySource) peek(ctx context.Context, tx *sql.Tx) (*historyRow, error) {
	if len(h.buf) > 0 {
		return &h.buf[0], nil
	}
	if h.done {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, h.query, h.args(h.from)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	size, cut := 0, false
	for !cut && rows.Next() {
		var r historyRow
		var seq int64
		if h.withSeq {
			r.msg, err = scanMessage(rows, &seq, &r.rid)
		} else {
			r.msg, err = scanMessage(rows, &r.rid)
		}
		if err != nil {
			return nil, err
		}
		h.from = h.pos(r.rid, seq)
		h.buf = append(h.buf, r)
		// A chunk of large messages stops early, as the page will: the
		// next peek continues after the last row read.
		size += len(r.msg.Body)
		cut = size > protocol.MaxHistoryBytes
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !cut && len(h.buf) < h.chunk {
		h.done = true
	}
	if len(h.buf) == 0 {
		return nil, nil
	}
	return &h.buf[0], nil
}

func (h *historySource) take() *historyRow {
	r := h.buf[0]
	h.buf = h.buf[1:]
	return &r
}
