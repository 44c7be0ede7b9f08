package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Timeline walks messages newest first along their key (rid); the peer and
// pair filters look the peer's mailbox up through its primary key.
func (s *SQLite) Timeline(ctx context.Context, q TimelineQuery) ([]Message, bool, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM messages g
		WHERE (?1 = '' OR g.id < ?1)
		AND (?2 = '' OR g.thread = ?2)
		AND (?3 = '' OR ?4 != '' OR g.sender = ?3 OR g.rid IN (SELECT msg FROM mailbox WHERE recipient = ?3))
		AND (?4 = '' OR (g.sender = ?3 AND g.rid IN (SELECT msg FROM mailbox WHERE recipient = ?4))
			OR (g.sender = ?4 AND g.rid IN (SELECT msg FROM mailbox WHERE recipient = ?3)))
		ORDER BY g.rid DESC LIMIT ?5`, q.Before, q.Thread, q.Peer, q.With, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("read timeline in %s: %w", s.path, err)
	}
	msgs, more, err := newestPage(rows, limit)
	if err != nil {
		return nil, false, fmt.Errorf("read timeline in %s: %w", s.path, err)
	}
	return msgs, more, nil
}

// newestPage reads a page of messages that rows holds newest first, at
// most limit+1 of them (one more than the page tells whether there are
// more), and returns the page oldest first and whether there were more.
// It closes rows.
func newestPage(rows *sql.Rows, limit int) ([]Message, bool, error) {
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	slices.Reverse(out)
	return out, more, nil
}

func (s *SQLite) Stages(ctx context.Context, ids []string) ([]Receipt, error) {
	js, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	return s.receiptsWhere(ctx, "read stages", ids, "1", string(js))
}

func (s *SQLite) OldestUnread(ctx context.Context, clients []string) (map[string]time.Time, error) {
	js, err := json.Marshal(clients)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT c.value,
			(SELECT g.ts FROM mailbox m JOIN messages g ON g.rid = m.msg WHERE m.recipient = c.value AND m.read_at = 0
				ORDER BY m.seq LIMIT 1) -- seq follows storage order: the first unread is the oldest
		FROM json_each(?1) c`, string(js))
	if err != nil {
		return nil, fmt.Errorf("read oldest unread in %s: %w", s.path, err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var ts *int64
		if err := rows.Scan(&id, &ts); err != nil {
			return nil, fmt.Errorf("read oldest unread in %s: %w", s.path, err)
		}
		if ts != nil {
			out[id] = fromNanos(*ts)
		}
	}
	return out, rows.Err()
}
