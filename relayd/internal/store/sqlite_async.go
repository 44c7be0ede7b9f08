package store

// finish records the op's outcome and tells whoever waits for it.
func (o *op) finish(err error) {
	o.err = err
	if o.after != nil {
		o.after(err)
	}
	if o.done != nil {
		close(o.done)
	}
}

// writeAsync hands fn to the committer without waiting: after runs on the
// committer with the outcome once the batch holding fn has committed or
// failed. Ops reach the committer in the order of the calls (one channel),
// which is what keeps one sender's messages in order. When the queue is
// full, writeAsync waits for room: a pipelining sender is slowed to the
// pace of the disk, not given an unbounded queue.
func (s *SQLite) writeAsync(fn func(*batch) error, after func(error)) {
	o := &op{apply: fn, after: after}
	select {
	case <-s.quit:
		after(s.closedError())
		return
	default:
	}
	select {
	case s.ops <- o:
	case <-s.quit:
		after(s.closedError())
	}
}
