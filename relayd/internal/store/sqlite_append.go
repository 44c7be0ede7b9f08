package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// Append submits msg and waits for its commit.
func (s *SQLite) Append(ctx context.Context, msg Message, recipients []string, maxQueue int) ([]Slot, error) {
	return AppendWait(ctx, s, msg, recipients, maxQueue)
}

// Submit implements Store. The seqs are assigned here, under submitMu, in
// the order the ops reach the committer; the deliveries join the recent
// cache at once, so that provisional readers have them while the commit
// runs. A send the sender's durable ref window already holds is answered
// as a duplicate without touching a mailbox, and so is a retry of a send
// still on its way to the disk: it gets no seqs and is handed to no one,
// since a copy handed early could not be taken back from a client of the
// older protocol, and would cost a provisional one its connection.
func (s *SQLite) Submit(msg Message, recipients []string, maxQueue int, ref *SendRef, done func(Submitted)) ([]Slot, bool) {
	a, err := s.newAppend(msg, recipients, maxQueue, ref)
	if err != nil {
		done(Submitted{Err: err})
		return nil, false
	}
	if ref != nil {
		dup, err := s.sentBefore(msg.From, ref)
		if err != nil {
			done(Submitted{Err: fmt.Errorf("store message %s: %w", msg.ID, s.writeError(err))})
			return nil, false
		}
		if dup != nil {
			done(Submitted{Dup: dup})
			return nil, false
		}
	}
	s.submitMu.Lock()
	defer s.submitMu.Unlock()
	select {
	case <-s.quit:
		done(Submitted{Err: fmt.Errorf("store message %s: %w", msg.ID, s.closedError())})
		return nil, false
	default:
	}
	if ref != nil && s.retryInFlight(a) {
		s.writeAsync(a.apply, func(err error) {
			if err == nil && a.dup == nil {
				err = fmt.Errorf("the first attempt of send %s failed before it was stored; send it again", ref.Ref)
			}
			if err != nil {
				err = fmt.Errorf("store message %s: %w", msg.ID, err)
			}
			done(Submitted{Dup: a.dup, Err: err})
		})
		return nil, false
	}
	s.mu.Lock()
	for i, id := range recipients {
		bx := s.boxes[id]
		last := max(s.assigned[id], bx.last)
		if maxQueue > 0 && bx.unacked+int(last-bx.last) >= maxQueue {
			a.slots[i] = Slot{Full: true}
			continue
		}
		s.assigned[id] = last + 1
		a.slots[i] = Slot{Seq: last + 1}
	}
	if allFull(a.slots) { // nothing stored, nothing to commit
		s.mu.Unlock()
		if ref != nil {
			s.settled(a)
		}
		done(Submitted{Slots: a.slots, OnCaller: true})
		return a.slots, false
	}
	a.early = true
	s.publishEarly(a)
	s.mu.Unlock()
	slots := a.slots
	if ref != nil {
		a.sentRef = sentRefJSON(a.refPrefix, slots)
	}
	s.writeAsync(a.apply, func(err error) {
		if ref != nil {
			s.settled(a)
		}
		r := Submitted{Slots: slots, Early: true, Err: err, Dup: a.dup}
		if err != nil || a.dup != nil {
			// The provisional deliveries were never committed. A seq
			// with nothing submitted after it is given again (no gap
			// after a lone failed send); one followed by others stays
			// a gap, since a reader may have moved past it.
			s.mu.Lock()
			for i, id := range recipients {
				s.dropRecent(id)
				if seq := slots[i].Seq; seq > 0 && s.assigned[id] == seq {
					s.assigned[id] = s.boxes[id].last
				}
			}
			s.mu.Unlock()
		}
		if err != nil {
			r.Err = fmt.Errorf("store message %s: %w", msg.ID, err)
		}
		done(r)
	})
	return slots, true
}

// pendingAppend is one Append on its way to the committer.
type pendingAppend struct {
	msg        *Message
	to         string // msg.To as JSON
	ts         int64
	recipients []string
	maxQueue   int
	ref        *SendRef
	refPrefix  string // sent_ref without its seqs (sentRefPrefix)
	sentRef    any    // the sent_ref column: nil, or sentRefJSON once the seqs are known
	slots      []Slot // assigned by Submit
	dup        *Sent
	early      bool // in the recent cache since Submit
	retry      bool // of a send in flight when submitted: stores nothing
}

// retryInFlight reports whether a is a retry of a send with the same ref
// and content submitted and not settled yet (or settled since Submit
// looked), and otherwise records a as in flight. Called under submitMu, so the first attempt reaches the
// committer before its retry and the retry's apply finds it.
func (s *SQLite) retryInFlight(a *pendingAppend) bool {
	k := refKey{a.msg.From, a.ref.Ref}
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	if first := s.inFlight[k]; first != nil && first.ref.Digest == a.ref.Digest {
		a.retry = true
		return true
	}
	// Settled since Submit looked at the window: the window has it now.
	if w := s.refs[a.msg.From]; w != nil {
		if rec, ok := w.byRef[a.ref.Ref]; ok && rec.digest == a.ref.Digest {
			a.retry = true
			return true
		}
	}
	s.inFlight[k] = a
	return false
}

// settled forgets a once its commit is done or failed: a later retry finds
// it in the ref window, or stores itself.
func (s *SQLite) settled(a *pendingAppend) {
	k := refKey{a.msg.From, a.ref.Ref}
	s.refsMu.Lock()
	if s.inFlight[k] == a {
		delete(s.inFlight, k)
	}
	s.refsMu.Unlock()
}

func (s *SQLite) newAppend(msg Message, recipients []string, maxQueue int, ref *SendRef) (*pendingAppend, error) {
	// Encode outside the committer so that work runs on the callers'
	// goroutines, in parallel.
	tob, err := json.Marshal(msg.To)
	if err != nil {
		return nil, fmt.Errorf("encode recipients of message %s: %w", msg.ID, err)
	}
	to := string(tob)
	if msg.To == nil {
		to = "[]"
	}
	a := &pendingAppend{msg: &msg, to: to, ts: nanos(msg.TS), recipients: recipients, maxQueue: maxQueue,
		ref: ref, slots: make([]Slot, len(recipients))}
	if ref != nil {
		if a.refPrefix, err = sentRefPrefix(ref, recipients); err != nil {
			return nil, fmt.Errorf("encode the send ref of message %s: %w", msg.ID, err)
		}
	}
	return a, nil
}

// apply runs in the committer. It may run twice (see op), so it sets every
// result it returns.
func (a *pendingAppend) apply(b *batch) error {
	a.dup = nil
	if a.ref != nil {
		dup, err := b.findRef(a.msg.From, a.ref)
		if err != nil {
			return err
		}
		if dup != nil {
			a.dup = dup
			return nil
		}
	}
	if a.retry {
		return nil // the first attempt failed: its sender is told to send again
	}
	msg := a.msg
	rid := b.nextRid
	b.nextRid++
	b.msgRows = append(b.msgRows, rid, msg.ID, msg.From, a.to, msg.Body, a.ts, msg.ReplyTo, msg.Thread, a.sentRef)
	b.msgIDs = append(b.msgIDs, msg.ID)
	for i, id := range a.recipients {
		seq := a.slots[i].Seq
		if seq == 0 {
			continue // full
		}
		bx, _ := b.box(id, true)
		b.entryRows = append(b.entryRows, id, int64(seq), rid)
		// Not dirty: the entry itself records the new last seq.
		bx.last, bx.unacked, bx.unread = max(bx.last, seq), bx.unacked+1, bx.unread+1
	}
	b.appended = append(b.appended, appended{msg: msg, recipients: a.recipients, slots: a.slots, early: a.early})
	if a.ref != nil {
		b.addRef(msg, a.ref, a.recipients, a.slots)
	}
	return nil
}
