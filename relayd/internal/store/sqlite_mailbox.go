package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

const deliveryColumns = "g.id, g.sender, g.recipients, g.body, g.ts, g.reply_to, g.thread"

func scanMessage(sc interface{ Scan(...any) error }, extra ...any) (Message, error) {
	var m Message
	var to string
	var ts int64
	dst := append(extra, &m.ID, &m.From, &to, &m.Body, &ts, &m.ReplyTo, &m.Thread)
	if err := sc.Scan(dst...); err != nil {
		return m, err
	}
	var err error
	if m.To, err = decodeRecipients(to); err != nil {
		return m, fmt.Errorf("decode recipients of message %s: %w", m.ID, err)
	}
	m.TS = fromNanos(ts)
	return m, nil
}

func (s *SQLite) Pending(ctx context.Context, id string, after uint64, limit int, provisional bool) ([]Delivery, error) {
	if ds, ok := s.pendingFromRecent(id, after, limit, provisional); ok {
		return ds, nil
	}
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT m.seq, `+deliveryColumns+`
		FROM mailbox m JOIN messages g ON g.rid = m.msg
		WHERE m.recipient = ?1
		  AND m.seq > max(?2, coalesce((SELECT acked FROM boxes WHERE recipient = ?1), 0))
		ORDER BY m.seq LIMIT ?3`, id, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("read mailbox %s in %s: %w", id, s.path, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var seq int64
		m, err := scanMessage(rows, &seq)
		if err != nil {
			return nil, fmt.Errorf("read mailbox %s in %s: %w", id, s.path, err)
		}
		out = append(out, Delivery{Seq: uint64(seq), Msg: m})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read mailbox %s in %s: %w", id, s.path, err)
	}
	return out, nil
}

func (s *SQLite) Ack(ctx context.Context, id string, upto uint64) error {
	s.mu.RLock()
	bx := s.boxes[id]
	top := max(bx.last, s.assigned[id])
	s.mu.RUnlock()
	// A client only knows seqs that were assigned, so an ack at or below
	// the cached one changes nothing: skip the write. An ack of a seq on
	// its way to the committer is queued behind it, and the committer
	// clamps it to what is committed.
	if min(upto, top) <= bx.acked {
		return nil
	}
	err := s.write(ctx, func(b *batch) error {
		// Earlier appends of this batch must be in the table first.
		if err := b.writeRows(); err != nil {
			return err
		}
		bx, ok := b.box(id, false)
		if !ok {
			return nil
		}
		to := max(bx.acked, min(upto, bx.last))
		if to == bx.acked {
			return nil
		}
		n, err := stampDelivered(b, id, bx.acked, to)
		if err != nil {
			return err
		}
		bx.acked, bx.unacked = to, bx.unacked-n
		b.dirty[id] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("ack %s up to %d: %w", id, upto, err)
	}
	return nil
}

func (s *SQLite) LastSeq(_ context.Context, id string) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.boxes[id].last, nil
}

func (s *SQLite) Unacked(_ context.Context, id string) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.boxes[id].unacked, nil
}

func (s *SQLite) Clear(ctx context.Context, id string, includeUnread bool) (int, error) {
	var n int
	err := s.write(ctx, func(b *batch) error {
		// Earlier appends of this batch must be in the table first.
		if err := b.writeRows(); err != nil {
			return err
		}
		n = 0
		b.forget = true
		var removed []int64
		if bx, ok := b.box(id, false); ok {
			// Record the last seq in boxes before its entry may go.
			b.dirty[id] = true
			q := "DELETE FROM mailbox WHERE recipient = ? AND seq <= ? RETURNING msg, read_at = 0"
			upto := bx.acked
			if includeUnread {
				upto = bx.last
			}
			rows, err := b.tx.QueryContext(b.ctx, q, id, int64(upto))
			if err != nil {
				return fmt.Errorf("clear mailbox %s: %w", id, err)
			}
			for rows.Next() {
				var rid int64
				var unread bool
				if err := rows.Scan(&rid, &unread); err != nil {
					rows.Close()
					return fmt.Errorf("clear mailbox %s: %w", id, err)
				}
				removed = append(removed, rid)
				if unread {
					bx.unread--
				}
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return fmt.Errorf("clear mailbox %s: %w", id, err)
			}
			n += len(removed)
			if includeUnread {
				bx.acked, bx.unacked = bx.last, 0
			}
		}
		res, err := b.exec("UPDATE messages SET sender_cleared = 1 WHERE sender = ? AND sender_cleared = 0", id)
		if err != nil {
			return fmt.Errorf("clear messages sent by %s: %w", id, err)
		}
		sent, _ := res.RowsAffected()
		n += int(sent)
		// Messages nobody can see any more go for good: the sender
		// cleared them and no mailbox holds them.
		js, _ := json.Marshal(removed)
		if _, err := b.exec(`DELETE FROM messages
			WHERE (sender = ?1 OR rid IN (SELECT value FROM json_each(?2)))
			  AND sender_cleared = 1
			  AND NOT EXISTS (SELECT 1 FROM mailbox WHERE msg = messages.rid)`, id, string(js)); err != nil {
			return fmt.Errorf("delete messages cleared by %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("clear history of %s: %w", id, err)
	}
	return n, nil
}
