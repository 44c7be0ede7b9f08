package store

import (
	"cmp"
	"slices"
)

// Place puts msg in recipient's mailbox at seq, a seq chosen elsewhere: the
// cluster's stream numbers every message, and each relayd node keeps an
// index of it in a Memory (package cluster). A message placed for several
// recipients is held once. Place reports false, and changes nothing, when
// seq is not above the mailbox's last seq (a replay of what it holds).
func (m *Memory) Place(msg Message, recipient string, seq uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.box(recipient)
	if seq <= b.last {
		return false
	}
	mm := m.msgs[msg.ID]
	if mm == nil {
		mm = &memMsg{Message: msg}
		mm.To = slices.Clone(msg.To)
		m.msgs[msg.ID] = mm
		at, _ := slices.BinarySearchFunc(m.order, msg.ID, func(e *memMsg, id string) int { return cmp.Compare(e.ID, id) })
		m.order = slices.Insert(m.order, at, mm)
	}
	b.last = seq
	b.entries = append(b.entries, memEntry{seq: seq, msg: mm})
	return true
}
