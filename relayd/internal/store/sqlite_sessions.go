package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Touch does not wait for its commit, so that a hello never waits for the
// disk: the id is known at once and its row goes in with the next batch,
// which Sessions waits for. A store whose writes are failing refuses it,
// as it refuses sends.
func (s *SQLite) Touch(_ context.Context, si SessionInfo) error {
	if p := s.writeErr.Load(); p != nil {
		return fmt.Errorf("touch session %s: %w", si.ID, *p)
	}
	select {
	case <-s.quit:
		return fmt.Errorf("touch session %s: %w", si.ID, s.closedError())
	default:
	}
	first := si.FirstSeen
	if first.IsZero() {
		first = si.LastSeen
	}
	s.mu.Lock()
	s.sessions[si.ID] = true
	s.mu.Unlock()
	s.writeAsync(func(b *batch) error {
		_, err := b.exec(qTouch,
			si.ID, si.Host, si.PID, si.Cwd, si.Agent, si.Label, nanos(first), nanos(si.LastSeen))
		if err != nil {
			return fmt.Errorf("record session %s: %w", si.ID, err)
		}
		b.added = append(b.added, si.ID)
		return nil
	}, func(err error) {
		if err != nil {
			s.log.Warn("session not recorded", logKeyClient, si.ID, logKeyErr, err)
		}
	})
	return nil
}

func (s *SQLite) Known(_ context.Context, id string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, box := s.boxes[id]
	return s.sessions[id] || box, nil
}

func (s *SQLite) Sessions(ctx context.Context) ([]SessionInfo, map[string]int, error) {
	// The touches made before this call are on their way to the
	// committer: wait for them (a barrier, no transaction of its own).
	_ = s.write(ctx, nil)
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
