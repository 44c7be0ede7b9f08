package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

func (s *SQLite) Prune(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n, done, err := s.pruneOnce(ctx, nanos(before))
		total += n
		if err != nil {
			return total, fmt.Errorf("prune messages older than %s (%d mailbox entries dropped so far): %w", before.Format(time.RFC3339), total, err)
		}
		if done {
			return total, nil
		}
	}
}

// pruneOnce deletes up to s.pruneChunk of the oldest messages older than cut
// and their mailbox entries; done reports that none are left.
//
// Oldest means first stored: the walk follows rid (the table's own order,
// no index on ts to keep up on every send) and stops at the first message
// stamped at or after cut. Messages are stamped when the relay takes them,
// so the two orders agree but for the microseconds between concurrent
// senders; after the clock was set back, what follows a newer stamp waits
// for it, kept a little longer, never pruned early.
func (s *SQLite) pruneOnce(ctx context.Context, cut int64) (n int, done bool, err error) {
	err = s.write(ctx, func(b *batch) error {
		n, done = 0, false
		// Earlier appends of this batch must be in the tables, and its
		// acks in boxes (the counts below read them), first.
		if err := b.writeRows(); err != nil {
			return err
		}
		if err := b.flush(); err != nil {
			return err
		}
		var rids []int64
		rows, err := b.tx.QueryContext(b.ctx, "SELECT rid, ts FROM messages ORDER BY rid LIMIT ?", s.pruneChunk)
		if err != nil {
			return fmt.Errorf("find expired messages: %w", err)
		}
		fresh := false
		for rows.Next() {
			var rid, ts int64
			if err := rows.Scan(&rid, &ts); err != nil {
				rows.Close()
				return fmt.Errorf("find expired messages: %w", err)
			}
			if ts >= cut {
				fresh = true
				break
			}
			rids = append(rids, rid)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("find expired messages: %w", err)
		}
		done = fresh || len(rids) < s.pruneChunk
		if len(rids) == 0 {
			return nil
		}
		// The refs of expired messages go with them (they answer retries
		// nobody will send): reload the windows.
		b.forget, b.resetRefs = true, true
		js, _ := json.Marshal(rids)
		// Record every mailbox's last seq before its newest entry may go.
		if _, err := b.tx.ExecContext(b.ctx, `UPDATE boxes SET last_seq = max(last_seq,
			coalesce((SELECT max(seq) FROM mailbox WHERE recipient = boxes.recipient), 0))`); err != nil {
			return fmt.Errorf("record last seqs: %w", err)
		}
		rows, err = b.tx.QueryContext(b.ctx, `SELECT m.recipient, sum(m.seq > x.acked), sum(m.read_at = 0)
			FROM mailbox m JOIN boxes x ON x.recipient = m.recipient
			WHERE m.msg IN (SELECT value FROM json_each(?)) GROUP BY m.recipient`, string(js))
		if err != nil {
			return fmt.Errorf("count expired unread messages: %w", err)
		}
		type loss struct{ unacked, unread int }
		lost := map[string]loss{}
		for rows.Next() {
			var id string
			var c loss
			if err := rows.Scan(&id, &c.unacked, &c.unread); err != nil {
				rows.Close()
				return fmt.Errorf("count expired unread messages: %w", err)
			}
			lost[id] = c
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("count expired unread messages: %w", err)
		}
		res, err := b.tx.ExecContext(b.ctx, "DELETE FROM mailbox WHERE msg IN (SELECT value FROM json_each(?))", string(js))
		if err != nil {
			return fmt.Errorf("delete expired mailbox entries: %w", err)
		}
		d, _ := res.RowsAffected()
		n = int(d)
		if _, err := b.tx.ExecContext(b.ctx, "DELETE FROM messages WHERE rid IN (SELECT value FROM json_each(?))", string(js)); err != nil {
			return fmt.Errorf("delete expired messages: %w", err)
		}
		for id, c := range lost {
			if bx, ok := b.box(id, false); ok {
				bx.unacked -= c.unacked
				bx.unread -= c.unread
			}
		}
		return nil
	})
	return n, done, err
}
