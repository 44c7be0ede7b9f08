package store

import "context"

// UsedBytes is how much of the database file holds data: its pages less
// the free ones (pages freed by retention or clears are reused before the
// file grows, so the file's size would overstate it).
func (s *SQLite) UsedBytes(ctx context.Context) (int64, error) {
	var pages, free, size int64
	for _, q := range []struct {
		pragma string
		v      *int64
	}{{"PRAGMA page_count", &pages}, {"PRAGMA freelist_count", &free}, {"PRAGMA page_size", &size}} {
		if err := s.r.QueryRowContext(ctx, q.pragma).Scan(q.v); err != nil {
			return 0, err
		}
	}
	return (pages - free) * size, nil
}
