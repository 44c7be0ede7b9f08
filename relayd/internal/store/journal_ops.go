package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// The journal store's writes: each is applied to memory and its record
// queued under mu (journal.go), then waited for when its caller waits.

// Submit implements Store. done runs once the record is written, in the
// order of the Submit calls: on the caller's goroutine, before Submit
// returns, when it became the writer (see lead), so a lone send is
// written before its recipients are woken and reaches them committed. A
// send that queued behind a write in progress is handed off early (Early):
// provisional readers take it at once, and hear it is committed with the
// next ack, one for the whole batch.
func (j *JournalStore) Submit(msg Message, recipients []string, maxQueue int, ref *SendRef, done func(Submitted)) ([]Slot, bool) {
	slots, own := j.submit(msg, recipients, maxQueue, ref, done)
	if own != nil {
		j.lead(own) // done ran here: the send is written (or failed)
		return slots, false
	}
	return slots, slots != nil && !allFull(slots) // all full: answered, nothing queued
}

// submit applies a send and queues its record. Failures that need no
// write are answered at once, with nothing queued. It returns the send
// when its caller became the writer and must lead.
func (j *JournalStore) submit(msg Message, recipients []string, maxQueue int, ref *SendRef, done func(Submitted)) ([]Slot, *jSend) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		done(Submitted{Err: fmt.Errorf("store message %s: %w", msg.ID, j.closedError())})
		return nil, nil
	}
	var w *jWindow
	if ref != nil {
		w = j.window(msg.From)
		if e := w.find(ref); e != nil {
			// A retry: answered in turn with the first's record, once
			// that is on disk (or with an error if its write failed).
			s := &jSend{id: msg.ID, from: msg.From, ref: ref, sent: e.sent, done: done, retry: true, first: e.first}
			return nil, j.enqueueSend(s)
		}
	}
	slots, err := j.mem.Append(context.Background(), msg, recipients, maxQueue)
	if err != nil {
		done(Submitted{Err: err})
		return nil, nil
	}
	if allFull(slots) { // nothing stored, nothing to write
		done(Submitted{Slots: slots, OnCaller: true})
		return slots, nil
	}
	j.recs = appendSubmitRecord(j.recs, &msg, recipients, slots, ref)
	s := &jSend{id: msg.ID, from: msg.From, recipients: recipients, slots: slots, ref: ref, done: done}
	if ref != nil {
		// What a retry of it is told: kept only for sends that can have one.
		s.sent = &Sent{ID: msg.ID, TS: msg.TS, Recipients: recipients, Slots: slices.Clone(slots)}
		s.entry = w.add(ref.Ref, ref.Digest, s.sent, s)
	}
	return slots, j.enqueueSend(s)
}

// enqueueSend queues s and returns it if its caller became the writer.
// Called with mu held.
func (j *JournalStore) enqueueSend(s *jSend) *jSend {
	if j.enqueue(&jop{sub: s}) {
		return s
	}
	return nil
}

// Append submits msg and waits until it is written.
func (j *JournalStore) Append(ctx context.Context, msg Message, recipients []string, maxQueue int) ([]Slot, error) {
	return AppendWait(ctx, j, msg, recipients, maxQueue)
}

// Pending implements Store: without provisional only what is written;
// with it also what is not yet, marked Provisional.
func (j *JournalStore) Pending(_ context.Context, id string, after uint64, limit int, provisional bool) ([]Delivery, error) {
	return j.mem.pendingWritten(id, after, limit, provisional), nil
}

// LastSeq implements Store: the highest seq written in id's mailbox.
func (j *JournalStore) LastSeq(_ context.Context, id string) (uint64, error) {
	return j.mem.writtenSeq(id), nil
}

// Ack implements Store. An ack is clamped to what is written: a client
// only holds seqs it was sent, and those not written yet reached it
// provisionally. It does not wait for the disk (see lazyDelay): it
// returns the error of the last write while writes fail.
func (j *JournalStore) Ack(_ context.Context, id string, upto uint64) error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return fmt.Errorf("ack %s up to %d: %w", id, upto, j.closedError())
	}
	at := time.Now().UTC()
	if upto = j.mem.ackWritten(id, upto, at); upto == 0 {
		j.mu.Unlock()
		return nil // changes nothing (or no such mailbox)
	}
	err := j.writeLazy(recAck, jAck{ID: id, Upto: upto, At: nanos(at)})
	j.mu.Unlock()
	if err != nil {
		return fmt.Errorf("ack %s up to %d: %w", id, upto, err)
	}
	return nil
}

// MarkRead implements Store. Like Ack, it does not wait for the disk.
func (j *JournalStore) MarkRead(ctx context.Context, client string, ids []string, upto uint64, at time.Time) (int, error) {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return 0, fmt.Errorf("record reads of %s: %w", client, j.closedError())
	}
	n, _ := j.mem.MarkRead(ctx, client, ids, upto, at)
	err := j.writeLazy(recRead, jRead{Client: client, IDs: ids, Upto: upto, At: nanos(at)})
	j.mu.Unlock()
	if err != nil {
		return n, fmt.Errorf("record reads of %s: %w", client, err)
	}
	return n, nil
}

// Touch implements Store. It does not wait for the disk (see lazyDelay);
// it returns the error of the last write while writes fail.
func (j *JournalStore) Touch(ctx context.Context, si SessionInfo) error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return fmt.Errorf("record session %s: %w", si.ID, j.closedError())
	}
	j.mem.Touch(ctx, si)
	err := j.writeLazy(recTouch, toJTouch(si))
	j.mu.Unlock()
	return err
}

// Clear implements Store.
func (j *JournalStore) Clear(ctx context.Context, id string, includeUnread bool) (int, error) {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return 0, fmt.Errorf("clear %s: %w", id, j.closedError())
	}
	n, _ := j.mem.Clear(ctx, id, includeUnread)
	if err := j.writeSync(recClear, jClear{ID: id, Unread: includeUnread}); err != nil {
		return n, fmt.Errorf("clear %s: %w", id, err)
	}
	return n, nil
}

// Prune implements Store.
func (j *JournalStore) Prune(ctx context.Context, before time.Time) (int, error) {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return 0, fmt.Errorf("prune: %w", j.closedError())
	}
	n, _ := j.mem.Prune(ctx, before)
	if err := j.writeSync(recPrune, jPrune{Before: nanos(before)}); err != nil {
		return n, fmt.Errorf("prune messages older than %s: %w", before.Format(time.RFC3339), err)
	}
	return n, nil
}

// PutHold implements Holder.
func (j *JournalStore) PutHold(ctx context.Context, h Hold) (bool, error) {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return false, fmt.Errorf("hold %s: %w", h.Pair, j.closedError())
	}
	h.Pair = SortPair(h.Pair[0], h.Pair[1])
	h.ReleasedBy, h.ReleasedAt = "", time.Time{}
	ok, _ := j.mem.PutHold(ctx, h)
	if !ok {
		j.mu.Unlock()
		return false, nil
	}
	if err := j.writeSync(recHold, toJHold(h)); err != nil {
		return true, fmt.Errorf("hold %s: %w", h.Pair, err)
	}
	return true, nil
}

// EndHold implements Holder.
func (j *JournalStore) EndHold(ctx context.Context, pair [2]string, by string, at time.Time) (bool, error) {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return false, fmt.Errorf("release %s: %w", pair, j.closedError())
	}
	at = releaseTime(at)
	ok, _ := j.mem.EndHold(ctx, pair, by, at)
	if !ok {
		j.mu.Unlock()
		return false, nil
	}
	if err := j.writeSync(recEndHold, jEndHold{Pair: SortPair(pair[0], pair[1]), By: by, At: nanos(at)}); err != nil {
		return true, fmt.Errorf("release %s: %w", pair, err)
	}
	return true, nil
}

// UsedBytes implements Store: the journal's size.
func (j *JournalStore) UsedBytes(context.Context) (int64, error) { return j.size.Load(), nil }

// The reads are Memory's.

func (j *JournalStore) Known(ctx context.Context, id string) (bool, error) {
	return j.mem.Known(ctx, id)
}

func (j *JournalStore) Sessions(ctx context.Context) ([]SessionInfo, map[string]int, error) {
	return j.mem.Sessions(ctx)
}

func (j *JournalStore) Unacked(ctx context.Context, id string) (int, error) {
	return j.mem.Unacked(ctx, id)
}

func (j *JournalStore) History(ctx context.Context, q HistoryQuery) ([]Message, bool, error) {
	return j.mem.History(ctx, q)
}

func (j *JournalStore) Receipts(ctx context.Context, sender string, ids []string) ([]Receipt, error) {
	return j.mem.Receipts(ctx, sender, ids)
}

func (j *JournalStore) ReadStates(ctx context.Context, clients []string) (map[string]ReadState, error) {
	return j.mem.ReadStates(ctx, clients)
}

func (j *JournalStore) Timeline(ctx context.Context, q TimelineQuery) ([]Message, bool, error) {
	return j.mem.Timeline(ctx, q)
}

func (j *JournalStore) Stages(ctx context.Context, ids []string) ([]Receipt, error) {
	return j.mem.Stages(ctx, ids)
}

func (j *JournalStore) OldestUnread(ctx context.Context, clients []string) (map[string]time.Time, error) {
	return j.mem.OldestUnread(ctx, clients)
}

func (j *JournalStore) Search(ctx context.Context, q SearchQuery) ([]Message, bool, error) {
	return j.mem.Search(ctx, q)
}

func (j *JournalStore) Holds(ctx context.Context, released int) ([]Hold, error) {
	return j.mem.Holds(ctx, released)
}

var _ Store = (*JournalStore)(nil)
