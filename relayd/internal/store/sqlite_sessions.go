package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

func (s *SQLite) Touch(ctx context.Context, si SessionInfo) error {
	first := si.FirstSeen
	if first.IsZero() {
		first = si.LastSeen
	}
	err := s.write(ctx, func(b *batch) error {
		_, err := b.exec(qTouch,
			si.ID, si.Host, si.PID, si.Cwd, si.Agent, si.Label, nanos(first), nanos(si.LastSeen))
		if err != nil {
			return fmt.Errorf("record session %s: %w", si.ID, err)
		}
		b.added = append(b.added, si.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch session %s: %w", si.ID, err)
	}
	return nil
}

func (s *SQLite) Known(_ context.Context, id string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, box := s.boxes[id]
	return s.sessions[id] || box, nil
}

func (s *SQLite) Sessions(ctx context.Context) ([]SessionInfo, map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT id, host, pid, cwd, agent, label, first_seen, last_seen FROM sessions")
	if err != nil {
		return nil, nil, fmt.Errorf("list sessions in %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []SessionInfo
	seen := map[string]bool{}
	for rows.Next() {
		var si SessionInfo
		var first, last int64
		if err := rows.Scan(&si.ID, &si.Host, &si.PID, &si.Cwd, &si.Agent, &si.Label, &first, &last); err != nil {
			return nil, nil, fmt.Errorf("list sessions in %s: %w", s.path, err)
		}
		si.FirstSeen, si.LastSeen = fromNanos(first), fromNanos(last)
		out = append(out, si)
		seen[si.ID] = true
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list sessions in %s: %w", s.path, err)
	}
	queued := map[string]int{}
	s.mu.RLock()
	for id, bx := range s.boxes {
		queued[id] = bx.unacked
		if !seen[id] {
			// Mail queued for an id that never connected.
			out = append(out, SessionInfo{ID: id})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b SessionInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, queued, nil
}
