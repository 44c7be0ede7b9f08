package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// migrationReceipts adds read receipts: when each mailbox entry was
// delivered (acked by its client) and read (shown to its model), and when
// each client last reported reading. Mail acked before receipts existed is
// taken as delivered and read at its own timestamp: the relay never knew
// better, and counting old mail unread forever would be worse.
const migrationReceipts = `
ALTER TABLE mailbox ADD COLUMN delivered_at INTEGER NOT NULL DEFAULT 0; -- unix ns; 0: not acked yet
ALTER TABLE mailbox ADD COLUMN read_at INTEGER NOT NULL DEFAULT 0;      -- unix ns; 0: not shown to the model yet
UPDATE mailbox SET
	delivered_at = (SELECT ts FROM messages WHERE rid = mailbox.msg),
	read_at = (SELECT ts FROM messages WHERE rid = mailbox.msg)
WHERE seq <= coalesce((SELECT acked FROM boxes WHERE recipient = mailbox.recipient), 0);
CREATE TABLE reads (
	recipient TEXT PRIMARY KEY,
	last_read INTEGER NOT NULL -- unix ns of the client's last read report
) WITHOUT ROWID;
`

// The statements of acks and read reports, prepared once at open (see
// batch.exec): each client's acks and reads come one commit after another,
// and compiling a statement cost more than running it.
const (
	qStampDelivered = `UPDATE mailbox SET delivered_at = CASE WHEN delivered_at = 0 THEN ?1 ELSE delivered_at END
		WHERE recipient = ?2 AND seq > ?3 AND seq <= ?4`
	// Two statements, each on an index: by seq on the mailbox's key, by
	// id through messages.id and mailbox_by_msg.
	qReadSet = `UPDATE mailbox SET read_at = ?1, delivered_at = CASE WHEN delivered_at = 0 THEN ?1 ELSE delivered_at END
		WHERE recipient = ?2 AND read_at = 0 AND `
	qReadUpto = qReadSet + "seq > ?4 AND seq <= ?3"
	qReadIDs  = qReadSet + "msg IN (SELECT rid FROM messages WHERE id IN (SELECT value FROM json_each(?3)))"
	qLastRead = `INSERT INTO reads(recipient, last_read) VALUES (?, ?)
		ON CONFLICT(recipient) DO UPDATE SET last_read = max(last_read, excluded.last_read)`
)

// stampDelivered records the ack time of the entries with seq in
// (from, to] and returns how many entries that range holds. Called by Ack
// inside its write. One statement does both: it sets every entry of the
// range (one delivered already, by a read mark, keeps its time), so the
// rows it changed are the entries the ack covers.
func stampDelivered(b *batch, id string, from, to uint64) (int, error) {
	res, err := b.exec(qStampDelivered, time.Now().UnixNano(), id, int64(from), int64(to))
	if err != nil {
		return 0, fmt.Errorf("record delivery to %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("record delivery to %s: %w", id, err)
	}
	return int(n), nil
}

func (s *SQLite) MarkRead(ctx context.Context, client string, ids []string, upto uint64, at time.Time) (int, error) {
	if ids == nil {
		ids = []string{}
	}
	js, err := json.Marshal(ids)
	if err != nil {
		return 0, err
	}
	var n int
	err = s.write(ctx, func(b *batch) error {
		// Earlier appends of this batch must be in the table first.
		if err := b.writeRows(); err != nil {
			return err
		}
		n = 0
		bx, hasBox := b.box(client, false)
		if hasBox && upto > bx.readThrough {
			res, err := b.exec(qReadUpto, at.UnixNano(), client, int64(upto), int64(bx.readThrough))
			if err != nil {
				return fmt.Errorf("record reads of %s: %w", client, err)
			}
			k, _ := res.RowsAffected()
			n += int(k)
			bx.unread -= int(k)
			// Every entry up to the last seq is in the table (writeRows).
			bx.readThrough = max(bx.readThrough, min(upto, bx.last))
		}
		if len(ids) > 0 {
			res, err := b.exec(qReadIDs, at.UnixNano(), client, string(js))
			if err != nil {
				return fmt.Errorf("record reads of %s: %w", client, err)
			}
			k, _ := res.RowsAffected()
			n += int(k)
			if hasBox {
				bx.unread -= int(k)
			}
		}
		if _, err := b.exec(qLastRead, client, at.UnixNano()); err != nil {
			return fmt.Errorf("record reads of %s: %w", client, err)
		}
		return nil
	})
	if err == nil {
		s.mu.Lock()
		s.lastRead[client] = max(s.lastRead[client], at.UnixNano())
		s.mu.Unlock()
	}
	return n, err
}

func (s *SQLite) Receipts(ctx context.Context, sender string, ids []string) ([]Receipt, error) {
	js, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	return s.receiptsWhere(ctx, "read receipts", ids, "g.sender = ?2", string(js), sender)
}

// receiptSelect is one row per (message, recipient) among the ids in ?1,
// with whether the recipient's ack covers it; cond narrows it further.
const receiptSelect = `SELECT g.id, m.recipient, g.ts, m.delivered_at, m.read_at,
			m.seq <= coalesce((SELECT acked FROM boxes WHERE recipient = m.recipient), 0)
		FROM messages g JOIN mailbox m ON m.msg = g.rid
		WHERE g.id IN (SELECT value FROM json_each(?1)) AND `

// receiptsWhere reads the receipts receiptSelect and cond select, in the
// order of ids; what names the read in errors.
func (s *SQLite) receiptsWhere(ctx context.Context, what string, ids []string, cond string, args ...any) ([]Receipt, error) {
	rows, err := s.r.QueryContext(ctx, receiptSelect+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", what, s.path, err)
	}
	defer rows.Close()
	var out []Receipt
	for rows.Next() {
		var r Receipt
		var ts, del, read int64
		var acked bool
		if err := rows.Scan(&r.MsgID, &r.To, &ts, &del, &read, &acked); err != nil {
			return nil, fmt.Errorf("%s in %s: %w", what, s.path, err)
		}
		r.Stored, r.Delivered, r.Read = fromNanos(ts), fromNanos(del), fromNanos(read)
		r.DeliveredOK = acked || del != 0
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s in %s: %w", what, s.path, err)
	}
	SortReceipts(out, ids)
	return out, nil
}

// ReadStates answers from the cache: the unread counts kept with each
// mailbox by the commits that change them, and the last read reports.
func (s *SQLite) ReadStates(_ context.Context, clients []string) (map[string]ReadState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]ReadState, len(clients))
	for _, c := range clients {
		bx, ok := s.boxes[c]
		last, read := s.lastRead[c]
		if ok || read {
			out[c] = ReadState{Unread: bx.unread, LastRead: fromNanos(last)}
		}
	}
	return out, nil
}

// readLastReads reads every client's last read report (open).
func (s *SQLite) readLastReads(ctx context.Context) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT recipient, last_read FROM reads")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var last int64
		if err := rows.Scan(&id, &last); err != nil {
			return nil, err
		}
		out[id] = last
	}
	return out, rows.Err()
}
