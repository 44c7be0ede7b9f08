package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

const (
	opQueued    int32 = iota
	opTaken           // the committer has it: the caller must wait for the result
	opWithdrawn       // the caller gave up before the committer took it
)

// op is one write waiting for the committer. apply runs inside the batch's
// transaction; it may run twice (once in a batch that failed, once alone)
// so it must set its results, not accumulate them. An op without apply is
// a barrier: it writes nothing and is answered once the ops before it are.
type op struct {
	state atomic.Int32
	apply func(*batch) error
	err   error
	done  chan struct{} // nil for an async op
	after func(error)   // runs on the committer once the op's outcome is known; async ops only

}

// write hands fn to the committer and waits until its transaction has
// committed (or failed). A nil fn waits for the writes queued before it.
func (s *SQLite) write(ctx context.Context, fn func(*batch) error) error {
	// Checked first because select picks at random among ready cases: a
	// dead context must never get its write queued.
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{apply: fn, done: make(chan struct{})}
	select {
	case <-s.quit:
		return s.closedError()
	default:
	}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return s.closedError()
	}
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opWithdrawn) {
			return ctx.Err()
		}
		// Already in a transaction: its outcome is moments away, and
		// reporting "cancelled" for a message that was stored would make
		// the sender send it again.
		select {
		case <-o.done:
			return o.err
		case <-s.stopped:
		}
	case <-s.stopped:
	}
	// The committer answers every op it took before it exits.
	select {
	case <-o.done:
		return o.err
	default:
		return s.closedError()
	}
}

func (s *SQLite) closedError() error {
	return fmt.Errorf("%w: message store %s is closed (relayd is shutting down)", ErrUnavailable, s.path)
}

func (s *SQLite) commitLoop() {
	defer close(s.stopped)
	ops := make([]*op, 0, s.maxBatch)
	for {
		ops = ops[:0]
		select {
		case o := <-s.ops:
			ops = append(ops, o)
		case <-s.quit:
			// Finish what was queued before Close; later writers see
			// quit and stop.
			for {
				if ops = s.gather(ops[:0]); len(ops) == 0 {
					return
				}
				s.run(ops)
			}
		}
		ops = s.gather(ops)
		s.run(ops)
	}
}

// gather adds whatever else is waiting (and, with Linger, what arrives
// shortly) up to MaxBatch.
func (s *SQLite) gather(ops []*op) []*op {
	for len(ops) < s.maxBatch {
		select {
		case o := <-s.ops:
			ops = append(ops, o)
			continue
		default:
		}
		break
	}
	if s.linger <= 0 || len(ops) >= s.maxBatch {
		return ops
	}
	t := time.NewTimer(s.linger)
	defer t.Stop()
	for len(ops) < s.maxBatch {
		select {
		case o := <-s.ops:
			ops = append(ops, o)
		case <-t.C:
			return ops
		case <-s.quit:
			return ops
		}
	}
	return ops
}

// run commits ops in one transaction and answers each of them.
func (s *SQLite) run(ops []*op) {
	live := ops[:0]
	var barriers []*op
	for _, o := range ops {
		if !o.state.CompareAndSwap(opQueued, opTaken) {
			continue
		}
		if o.apply == nil {
			barriers = append(barriers, o)
			continue
		}
		live = append(live, o)
	}
	// A barrier is answered once the ops queued before it are settled:
	// they are in this batch or were in an earlier one.
	defer func() {
		for _, o := range barriers {
			o.finish(nil)
		}
	}()
	if len(live) == 0 {
		return
	}
	err := s.commit(live)
	if err != nil && len(live) > 1 && !errors.Is(err, ErrUnavailable) {
		// One op is at fault (say, a duplicate message id): commit the
		// others one by one so it fails alone.
		for _, o := range live {
			o.finish(s.commit([]*op{o}))
		}
		return
	}
	for _, o := range live {
		o.finish(err)
	}
}

// commit runs ops in one transaction. On success the in-memory cache takes
// the new state; on failure it is left alone (the file did not change) and
// the touched mailboxes are re-read from the file before the next commit,
// in case a failed COMMIT left more on disk than it admitted.
func (s *SQLite) commit(ops []*op) (err error) {
	ctx := context.Background() // the callers' contexts must not cut a batch short
	if err := s.reloadStale(ctx); err != nil {
		return s.writeError(err)
	}
	if s.nextRid == 0 {
		// Never at or below the search watermark, even once the newest
		// messages were deleted: a rid there counts as indexed.
		if err := s.r.QueryRowContext(ctx, "SELECT max(coalesce(max(rid), 0), (SELECT indexed FROM search_state)) + 1 FROM messages").Scan(&s.nextRid); err != nil {
			return s.writeError(fmt.Errorf("read the next message key: %w", err))
		}
	}
	b := &s.b
	if b.stmts == nil {
		b.s, b.stmts, b.boxes, b.dirty = s, map[string]*sql.Stmt{}, map[string]*boxState{}, map[string]bool{}
	}
	b.ctx, b.nextRid = ctx, s.nextRid
	clear(b.stmts)
	clear(b.boxes)
	clear(b.dirty)
	b.added, b.msgRows, b.msgIDs, b.entryRows = b.added[:0], b.msgRows[:0], b.msgIDs[:0], b.entryRows[:0]
	b.resetLearned()
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return s.writeError(err)
	}
	defer func() {
		if err != nil && errors.Is(err, ErrUnavailable) {
			// Drop the connection: one opened while the file was
			// read-only stays read-only, and a fresh one picks up a
			// repaired file or disk.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}()
	defer func() {
		if err != nil {
			for id := range b.boxes {
				s.stale[id] = true
			}
			s.nextRid = 0 // re-read: a failed COMMIT may have written more than it admitted
			if errors.Is(err, ErrUnavailable) {
				s.writeErr.Store(&err)
			}
			if !s.failing {
				s.failing = true
				s.log.Error("message store write failed", logKeyPath, s.path, logKeyBatch, len(ops), logKeyErr, err)
			}
			return
		}
		s.writeErr.Store(nil)
		if s.failing {
			s.failing = false
			s.log.Info("message store writes work again", logKeyPath, s.path)
		}
	}()
	if b.tx, err = conn.BeginTx(ctx, nil); err != nil {
		return s.writeError(err)
	}
	defer b.tx.Rollback()
	if h := s.hookInTx.Load(); h != nil {
		if err := (*h)(b.tx); err != nil {
			return s.writeError(err)
		}
	}
	for _, o := range ops {
		if err := o.apply(b); err != nil {
			if isConstraint(err) {
				return err
			}
			return s.writeError(err)
		}
	}
	if err := b.writeRows(); err != nil {
		if isConstraint(err) {
			return err
		}
		return s.writeError(err)
	}
	if err := b.flush(); err != nil {
		return s.writeError(err)
	}
	if err := b.tx.Commit(); err != nil {
		return s.writeError(err)
	}
	s.nextRid = b.nextRid
	s.learnRefs(b)
	s.mu.Lock()
	for id, bx := range b.boxes {
		s.boxes[id] = *bx
	}
	for _, id := range b.added {
		s.sessions[id] = true
	}
	s.learnRecent(b)
	s.mu.Unlock()
	return nil
}

// reloadStale re-reads the mailboxes a failed commit touched.
func (s *SQLite) reloadStale(ctx context.Context) error {
	if len(s.stale) == 0 {
		return nil
	}
	ids := make([]string, 0, len(s.stale))
	for id := range s.stale {
		ids = append(ids, id)
	}
	boxes, err := s.readBoxes(ctx, ids)
	if err != nil {
		return fmt.Errorf("re-read mailboxes after a failed write: %w", err)
	}
	s.mu.Lock()
	for _, id := range ids {
		if bx, ok := boxes[id]; ok {
			s.boxes[id] = bx
		} else {
			delete(s.boxes, id)
		}
	}
	s.mu.Unlock()
	clear(s.stale)
	return nil
}
