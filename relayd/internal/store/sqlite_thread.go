package store

import (
	"context"
	"database/sql"
)

// historyThread is History for one thread. A thread is a small part of
// what a client sees, so instead of merging the client's two streams (its
// sends, its mailbox) and dropping other threads' rows, it walks the
// thread along messages_by_thread (thread, rid) and keeps the rows the
// client may see: its own sends it has not cleared, and messages in its
// mailbox (one mailbox_by_msg seek each).
func (s *SQLite) historyThread(ctx context.Context, tx *sql.Tx, q HistoryQuery, limit int, lo, hi int64) ([]Message, bool, error) {
	forward := q.After != "" && q.Before == ""
	order := "DESC"
	if forward {
		order = "ASC"
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM messages g INDEXED BY messages_by_thread
		WHERE g.thread = ?1 AND g.thread != '' AND g.rid > ?3 AND g.rid < ?4
		  AND ((g.sender = ?2 AND g.sender_cleared = 0)
		    OR (g.sender != ?2 AND EXISTS (SELECT 1 FROM mailbox m WHERE m.msg = g.rid AND m.recipient = ?2)))
		  AND (?5 = '' OR g.sender = ?5 OR (g.sender = ?2 AND EXISTS (
			SELECT 1 FROM json_each(g.recipients) WHERE value IN (?5, '*'))))
		ORDER BY g.rid `+order+` LIMIT ?6`, q.Thread, q.Client, lo, hi, q.With, limit+1)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	page := historyPage{limit: limit}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, false, err
		}
		if !page.add(m) {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	msgs, more := page.result(forward)
	return msgs, more, nil
}
