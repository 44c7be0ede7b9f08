package store

import (
	"context"
	"time"
)

// The operator's view (Overview) on Memory: scans of the messages (scan),
// as Search is.

func (m *Memory) Timeline(_ context.Context, q TimelineQuery) ([]Message, bool, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	// stored reports whether mm was stored for id (its mailbox holds it).
	stored := func(id string, mm *memMsg) bool { return mm.in(m.mailboxes[id]) }
	page, more := m.newest(q.Before, limit, func(mm *memMsg) bool {
		switch {
		case q.Thread != "" && mm.Thread != q.Thread,
			q.Peer != "" && q.With == "" && mm.From != q.Peer && !stored(q.Peer, mm),
			q.Peer != "" && q.With != "" && !(mm.From == q.Peer && stored(q.With, mm) || mm.From == q.With && stored(q.Peer, mm)):
			return false
		}
		return true
	})
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
			// Entries are in seq order, which is storage order; all are
			// read up to readThrough.
			from, _ := b.index(b.readThrough + 1)
			for i := from; i < b.entries.len(); i++ {
				if e := b.entries.get(i); e.read == 0 {
					out[c] = e.msg.TS
					break
				}
			}
		}
	}
	return out, nil
}

// UsedBytes is 0: the memory store keeps nothing on disk, and the store
// size limit (--max-store-mb) is about the disk.
func (m *Memory) UsedBytes(context.Context) (int64, error) { return 0, nil }
