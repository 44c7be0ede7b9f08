package store

import (
	"cmp"
	"fmt"
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
		m.insertOrdered(mm)
	}
	b.last = seq
	b.entries = append(b.entries, memEntry{seq: seq, msg: mm})
	return true
}

// unappend takes a message Append stored back out: its write to the
// journal failed (JournalStore). Its seqs stay used.
func (m *Memory) unappend(id string, recipients []string, slots []Slot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, r := range recipients {
		b := m.mailboxes[r]
		if b == nil || i >= len(slots) || slots[i].Seq == 0 {
			continue
		}
		if at, ok := slices.BinarySearchFunc(b.entries, slots[i].Seq, func(e memEntry, s uint64) int { return cmp.Compare(e.seq, s) }); ok {
			b.entries = slices.Delete(b.entries, at, at+1)
		}
	}
	if m.msgs[id] == nil {
		return
	}
	delete(m.msgs, id)
	if at, ok := slices.BinarySearchFunc(m.order, id, func(e *memMsg, id string) int { return cmp.Compare(e.ID, id) }); ok {
		m.order = slices.Delete(m.order, at, at+1)
	}
}

// acked is id's ack (0 for no mailbox).
func (m *Memory) acked(id string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.mailboxes[id]; b != nil {
		return b.acked
	}
	return 0
}

// restore puts a message in its recipients' mailboxes at the seqs it got
// (0: the mailbox was full), as Append did: replay of the journal.
func (m *Memory) restore(msg Message, recipients []string, seqs []uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(seqs) != len(recipients) {
		return fmt.Errorf("message %s has %d seqs for %d recipients", msg.ID, len(seqs), len(recipients))
	}
	if m.msgs[msg.ID] != nil {
		return fmt.Errorf("message %s is stored twice", msg.ID)
	}
	mm := &memMsg{Message: msg}
	m.msgs[msg.ID] = mm
	m.insertOrdered(mm)
	for i, r := range recipients {
		b := m.box(r)
		seq := seqs[i]
		if seq == 0 {
			continue
		}
		if seq <= b.last {
			return fmt.Errorf("message %s takes seq %d in mailbox %s, which is at %d already", msg.ID, seq, r, b.last)
		}
		b.last = seq
		b.entries = append(b.entries, memEntry{seq: seq, msg: mm})
	}
	return nil
}
