package store

import (
	"context"
	"fmt"
	"time"
)

// migrationHolds is the schema step of the operator's holds: one row per
// hold, kept once released (who released it, when) for the latest
// keptReleases. At most one standing hold per pair (the partial index),
// so a second PutHold of a held pair changes nothing.
const migrationHolds = `
CREATE TABLE IF NOT EXISTS holds (
	id          INTEGER PRIMARY KEY, -- the order they were made
	a           TEXT NOT NULL,       -- the pair, a < b
	b           TEXT NOT NULL,
	held_by     TEXT NOT NULL,
	held_at     INTEGER NOT NULL,    -- unix nanoseconds
	released_by TEXT NOT NULL DEFAULT '',
	released_at INTEGER NOT NULL DEFAULT 0 -- 0 while it stands
);
CREATE UNIQUE INDEX IF NOT EXISTS holds_standing ON holds(a, b) WHERE released_at = 0;
`

// PutHold implements Holder. It goes through the committer, as every
// write does, and returns once the hold is durable.
func (s *SQLite) PutHold(ctx context.Context, h Hold) (bool, error) {
	pair := SortPair(h.Pair[0], h.Pair[1])
	var n int64
	err := s.write(ctx, func(b *batch) error {
		res, err := b.exec(`INSERT OR IGNORE INTO holds(a, b, held_by, held_at) VALUES (?, ?, ?, ?)`,
			pair[0], pair[1], h.By, nanos(h.At))
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return false, s.writeError(fmt.Errorf("record the hold of %s ↔ %s: %w", pair[0], pair[1], err))
	}
	return n > 0, nil
}

// EndHold implements Holder.
func (s *SQLite) EndHold(ctx context.Context, pair [2]string, by string, at time.Time) (bool, error) {
	pair = SortPair(pair[0], pair[1])
	var n int64
	err := s.write(ctx, func(b *batch) error {
		res, err := b.exec(`UPDATE holds SET released_by = ?, released_at = ? WHERE a = ? AND b = ? AND released_at = 0`,
			by, nanos(releaseTime(at)), pair[0], pair[1])
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil {
			return err
		}
		_, err = b.exec(`DELETE FROM holds WHERE released_at != 0 AND id NOT IN
			(SELECT id FROM holds WHERE released_at != 0 ORDER BY id DESC LIMIT ?)`, keptReleases)
		return err
	})
	if err != nil {
		return false, s.writeError(fmt.Errorf("record the release of %s ↔ %s: %w", pair[0], pair[1], err))
	}
	return n > 0, nil
}

// Holds implements Holder.
func (s *SQLite) Holds(ctx context.Context, released int) ([]Hold, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT a, b, held_by, held_at, released_by, released_at FROM holds
		WHERE released_at = 0 OR id IN (SELECT id FROM holds WHERE released_at != 0 ORDER BY id DESC LIMIT ?)
		ORDER BY id`, max(released, 0))
	if err != nil {
		return nil, fmt.Errorf("read the operator's holds from %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []Hold
	for rows.Next() {
		var h Hold
		var at, rel int64
		if err := rows.Scan(&h.Pair[0], &h.Pair[1], &h.By, &at, &h.ReleasedBy, &rel); err != nil {
			return nil, fmt.Errorf("read the operator's holds from %s: %w", s.path, err)
		}
		h.At, h.ReleasedAt = fromNanos(at), fromNanos(rel)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the operator's holds from %s: %w", s.path, err)
	}
	return out, nil
}
