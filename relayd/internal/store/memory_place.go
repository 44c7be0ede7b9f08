package store

import (
	"fmt"
	"time"
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
	_, mm := m.byID(msg.ID)
	if mm == nil {
		mm = m.addMsg(msg)
	}
	b.last = seq
	b.put(memEntry{seq: seq, msg: mm})
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
		if at, ok := b.index(slots[i].Seq); ok {
			b.dropped(b.entries.get(at))
			b.entries.delete(at)
		}
	}
	if at, mm := m.byID(id); mm != nil {
		delete(m.hidden, mm)
		m.order.delete(at)
	}
}

// The journal store's view of what is written (mailbox.written): kept in
// the mailbox, under the lock its readers take anyway.

// setWritten records that a send's seqs are on disk.
func (m *Memory) setWritten(recipients []string, slots []Slot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, r := range recipients {
		if b := m.mailboxes[r]; b != nil && i < len(slots) && slots[i].Seq > b.written {
			b.written = slots[i].Seq
		}
	}
}

// setAllWritten records that every seq is on disk: after replay.
func (m *Memory) setAllWritten() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.mailboxes {
		b.written = b.last
	}
}

// writtenSeq is the highest seq on disk in id's mailbox.
func (m *Memory) writtenSeq(id string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.mailboxes[id]; b != nil {
		return b.written
	}
	return 0
}

// ackWritten acks id's mailbox up to upto, clamped to what is written, at
// at. It returns the ack it made, or 0 when it changed nothing.
func (m *Memory) ackWritten(id string, upto uint64, at time.Time) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.mailboxes[id]
	if b == nil {
		return 0
	}
	to := min(upto, b.written)
	if !b.ack(to, at) {
		return 0
	}
	return to
}

// pendingWritten is Pending as the journal store answers it: without
// provisional only what is written; with it also what is not yet, marked
// Provisional.
func (m *Memory) pendingWritten(id string, after uint64, limit int, provisional bool) []Delivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.mailboxes[id]; b != nil {
		return b.pending(after, limit, b.written, provisional)
	}
	return nil
}

// restore puts a message in its recipients' mailboxes at the seqs it got
// (0: the mailbox was full), as Append did: replay of the journal.
func (m *Memory) restore(msg Message, recipients []string, seqs []uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(seqs) != len(recipients) {
		return fmt.Errorf("message %s has %d seqs for %d recipients", msg.ID, len(seqs), len(recipients))
	}
	if _, mm := m.byID(msg.ID); mm != nil {
		return fmt.Errorf("message %s is stored twice", msg.ID)
	}
	mm := m.addMsg(msg)
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
		b.put(memEntry{seq: seq, msg: mm})
	}
	return nil
}
