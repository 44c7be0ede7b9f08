package store

import (
	"context"
	"slices"
	"time"
)

// The operator's view (Overview) on Memory: scans of every message, as
// Search is; the memory store is for tests and small relays.

func (m *Memory) Timeline(_ context.Context, q TimelineQuery) ([]Message, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	// inBox reports whether id's mailbox holds mm: it was stored for id.
	boxes := map[string]map[*memMsg]bool{}
	inBox := func(id string, mm *memMsg) bool {
		set, ok := boxes[id]
		if !ok {
			set = map[*memMsg]bool{}
			if b := m.mailboxes[id]; b != nil {
				for _, e := range b.entries {
					set[e.msg] = true
				}
			}
			boxes[id] = set
		}
		return set[mm]
	}
	var page []Message
	more := false
	for i := len(m.order) - 1; i >= 0; i-- {
		mm := m.order[i]
		switch {
		case q.Before != "" && mm.ID >= q.Before,
			q.Thread != "" && mm.Thread != q.Thread,
			q.Peer != "" && q.With == "" && mm.From != q.Peer && !inBox(q.Peer, mm),
			q.Peer != "" && q.With != "" && !(mm.From == q.Peer && inBox(q.With, mm) || mm.From == q.With && inBox(q.Peer, mm)):
			continue
		}
		if len(page) == limit {
			more = true
			break
		}
		page = append(page, mm.Message)
	}
	slices.Reverse(page)
	return page, more, nil
}

func (m *Memory) Stages(_ context.Context, ids []string) ([]Receipt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.receiptsOf(ids, func(*memMsg) bool { return true }), nil
}

func (m *Memory) OldestUnread(_ context.Context, clients []string) (map[string]time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]time.Time{}
	for _, c := range clients {
		if b := m.mailboxes[c]; b != nil {
			// Entries are in seq order, which is storage order.
			if i := slices.IndexFunc(b.entries, func(e memEntry) bool { return e.readAt.IsZero() }); i >= 0 {
				out[c] = b.entries[i].msg.TS
			}
		}
	}
	return out, nil
}

// UsedBytes is 0: the memory store keeps nothing on disk, and the store
// size limit (--max-store-mb) is about the disk.
func (m *Memory) UsedBytes(context.Context) (int64, error) { return 0, nil }
