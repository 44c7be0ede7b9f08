package store

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Receipt is one message in one recipient's mailbox, with its stages.
type Receipt struct {
	MsgID       string
	To          string
	Stored      time.Time // the message's timestamp
	Delivered   time.Time // zero: not acked yet (an entry acked before receipts existed has the ack's time unknown: Stored)
	Read        time.Time // zero: not shown to the model yet
	DeliveredOK bool      // acked, even when the time is unknown
}

// ReadState is what a sender may know about a recipient's attention.
type ReadState struct {
	Unread   int
	LastRead time.Time
}

// stampDelivered marks the entries with seq in (from, to] delivered at at.
func (b *mailbox) stampDelivered(from, to uint64, at time.Time) {
	if to <= from {
		return
	}
	i, _ := b.index(from + 1)
	for ; i < b.entries.len() && b.entries.get(i).seq <= to; i++ {
		if b.entries.get(i).delivered == 0 {
			b.entries.at(i).delivered = nanos(at)
		}
	}
}

// readOn moves readThrough past the entries read since: reads reported
// by id (as relay-mcp reports them) arrive about in order, so the unread
// counts (ReadStates) look at the unread tail, not the whole mailbox.
func (b *mailbox) readOn() {
	i, _ := b.index(b.readThrough + 1)
	for ; i < b.entries.len() && b.entries.get(i).read != 0; i++ {
		b.readThrough = b.entries.get(i).seq
	}
}

func (m *Memory) MarkRead(_ context.Context, client string, ids []string, upto uint64, at time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.mailboxes[client]
	if b == nil {
		return 0, nil
	}
	n := 0
	mark := func(e *memEntry) {
		if e.read == 0 {
			e.read = nanos(at)
			if e.read != 0 {
				b.unread--
			}
			if e.delivered == 0 {
				e.delivered = e.read // shown implies held
			}
			n++
		}
	}
	// Up to a seq: only past what is read through already, as on SQLite
	// (boxState.readThrough).
	if upto > b.readThrough {
		i, _ := b.index(b.readThrough + 1)
		for ; i < b.entries.len() && b.entries.get(i).seq <= upto; i++ {
			mark(b.entries.at(i))
		}
		b.readThrough = max(b.readThrough, min(upto, b.last))
	}
	for _, id := range ids {
		if _, mm := m.byID(id); mm != nil {
			for s := range mm.slots() {
				if s.box == b {
					if i, ok := s.find(mm); ok {
						mark(b.entries.at(i))
					}
				}
			}
		}
	}
	b.readOn()
	if n > 0 || len(ids) > 0 || upto > 0 {
		b.lastRead = at
	}
	return n, nil
}

func (m *Memory) Receipts(_ context.Context, sender string, ids []string) ([]Receipt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.receiptsOf(ids, func(mm *memMsg) bool { return mm.From == sender }), nil
}

// receiptsOf returns the receipts of the messages with these ids that
// pass keep: one per mailbox still holding one, found from the message's
// own slots (a relay_status asks it, and must not walk every mailbox).
// m.mu is held.
func (m *Memory) receiptsOf(ids []string, keep func(*memMsg) bool) []Receipt {
	var out []Receipt
	done := make(map[string]bool, len(ids))
	for _, id := range ids {
		_, mm := m.byID(id)
		if mm == nil || done[id] || !keep(mm) {
			continue
		}
		done[id] = true
		for s := range mm.slots() {
			i, ok := s.find(mm)
			if !ok {
				continue
			}
			e := s.box.entries.get(i)
			out = append(out, Receipt{MsgID: id, To: s.box.id, Stored: mm.TS, Delivered: fromNanos(e.delivered), Read: fromNanos(e.read),
				DeliveredOK: e.seq <= s.box.acked || e.read != 0})
		}
	}
	SortReceipts(out, ids)
	return out
}

func (m *Memory) ReadStates(_ context.Context, clients []string) (map[string]ReadState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]ReadState, len(clients))
	for _, c := range clients {
		b := m.mailboxes[c]
		if b == nil {
			continue
		}
		rs := ReadState{LastRead: b.lastRead, Unread: b.unread}
		out[c] = rs
	}
	return out, nil
}

// SortReceipts orders receipts as the ids were asked for, then by
// recipient.
func SortReceipts(rs []Receipt, ids []string) {
	pos := make(map[string]int, len(ids))
	for i, id := range ids {
		if _, ok := pos[id]; !ok {
			pos[id] = i
		}
	}
	slices.SortFunc(rs, func(a, b Receipt) int {
		if d := pos[a.MsgID] - pos[b.MsgID]; d != 0 {
			return d
		}
		return cmp.Compare(a.To, b.To)
	})
}
