package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// submission is a Submit on its way to the stream: one publish per
// recipient, acknowledged by JetStream once its replicas hold it.
type submission struct {
	msg        store.Message
	recipients []string
	slots      []store.Slot
	acks       []jetstream.PubAckFuture // nil where the mailbox was full
	msgs       []*nats.Msg              // the copies, to publish again
	err        error                    // a publish could not even be sent
	deadline   time.Time                // when to stop waiting for acks
	done       func(store.Submitted)
}

// Submit publishes msg to each recipient's subject at once, without waiting,
// and leaves the waiting to the committer, which calls done in Submit
// order once JetStream acknowledged every copy. Nothing is visible early:
// a recipient reads a message from its node's index, which holds only what
// the stream holds. Each copy carries a Nats-Msg-Id made of the send's
// ref, so a send retried on another node after a crash is stored once.
func (s *Store) Submit(msg store.Message, recipients []string, maxQueue int, ref *store.SendRef, done func(store.Submitted)) ([]store.Slot, bool) {
	sub := &submission{msg: msg, recipients: recipients, slots: make([]store.Slot, len(recipients)),
		acks: make([]jetstream.PubAckFuture, len(recipients)), msgs: make([]*nats.Msg, len(recipients)), done: done, deadline: time.Now().Add(s.opts.PublishTimeout)}
	data, err := json.Marshal(msg)
	base := msgIDBase(msg, ref)
	// Publishing and queueing under one lock keeps the committer's order
	// that of the publishes, so done runs in Submit order.
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for i, r := range recipients {
		if err != nil {
			break
		}
		if maxQueue > 0 {
			if n, _ := s.ix.mem.Unacked(context.Background(), r); n >= maxQueue {
				sub.slots[i].Full = true
				continue
			}
		}
		m := &nats.Msg{Subject: mailSubject(r), Data: data, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, base+"."+r)
		sub.msgs[i] = &nats.Msg{Subject: m.Subject, Data: data, Header: m.Header}
		sub.acks[i], err = s.js.PublishMsgAsync(m)
	}
	if err != nil {
		sub.err = fmt.Errorf("%w: cluster publish: %v", store.ErrUnavailable, err)
	}
	select {
	case s.subs <- sub:
	case <-s.closed:
		done(store.Submitted{Err: fmt.Errorf("%w: relayd is shutting down", store.ErrUnavailable)})
	}
	return nil, false
}

// commitLoop waits for each submission's acknowledgements in turn.
func (s *Store) commitLoop() {
	defer close(s.done)
	for {
		select {
		case sub := <-s.subs:
			sub.done(s.settle(sub))
		case <-s.closed:
			for {
				select {
				case sub := <-s.subs:
					sub.done(s.settle(sub))
				default:
					return
				}
			}
		}
	}
}

func (s *Store) settle(sub *submission) store.Submitted {
	res := store.Submitted{Slots: sub.slots}
	dups := 0
	var dupSeq uint64
	for i, f := range sub.acks {
		if f == nil {
			continue
		}
		ack, again, err := s.await(f, sub.msgs[i], sub.deadline)
		if err != nil {
			if sub.err == nil {
				sub.err = fmt.Errorf("%w: cluster write for %s: %v", store.ErrUnavailable, sub.recipients[i], err)
			}
			continue
		}
		sub.slots[i].Seq = ack.Sequence
		s.ix.saw(ack.Sequence)
		// A copy published again may find its own first publish stored:
		// that is no retry of another send.
		if ack.Duplicate && !again {
			dups++
			dupSeq = ack.Sequence
		}
	}
	if sub.err != nil {
		// Copies that were stored stay stored: a retry with the same ref
		// finds them in the duplicate window and stores only the rest.
		return store.Submitted{Err: sub.err}
	}
	if dups > 0 && dups == countAcks(sub.acks) {
		if sent := s.original(dupSeq, sub); sent != nil {
			return store.Submitted{Dup: sent}
		}
	}
	return res
}

// retryAfter is how long a copy's ack may take before the copy is
// published again.
const retryAfter = 2 * time.Second

// await waits for a copy's ack until deadline (which counts from the
// publish, not from here: acks lost with a NATS connection would otherwise
// cost every submission queued behind them a full timeout of its own). An
// ack that does not come within retryAfter — lost with the connection, or
// asked of a stream leader that died — is asked again by publishing the
// copy again with the same Nats-Msg-Id, which JetStream stores once; again
// reports that it was.
func (s *Store) await(f jetstream.PubAckFuture, m *nats.Msg, deadline time.Time) (ack *jetstream.PubAck, again bool, err error) {
	t := time.NewTimer(max(0, min(time.Until(deadline), retryAfter)))
	select {
	case ack := <-f.Ok():
		t.Stop()
		return ack, false, nil
	case err = <-f.Err():
		t.Stop()
	case <-t.C:
		err = fmt.Errorf("no acknowledgement within %s", retryAfter)
	}
	for time.Until(deadline) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), min(time.Until(deadline), retryAfter))
		ack, perr := s.js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header})
		cancel()
		if perr == nil {
			return ack, true, nil
		}
		err = perr
		time.Sleep(min(100*time.Millisecond, max(0, time.Until(deadline)))) // the cluster is electing a leader: a moment
	}
	return nil, true, fmt.Errorf("not acknowledged within %s: %w", s.opts.PublishTimeout, err)
}

func countAcks(acks []jetstream.PubAckFuture) int {
	n := 0
	for _, a := range acks {
		if a != nil {
			n++
		}
	}
	return n
}

// original reads the message a retried send was first stored as, so the
// retry is answered with its id.
func (s *Store) original(seq uint64, sub *submission) *store.Sent {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.PublishTimeout)
	defer cancel()
	raw, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		s.log.Warn("cluster: could not read the first copy of a retried send", "seq", seq, "err", err)
		return nil
	}
	var ev store.Message
	if err := json.Unmarshal(raw.Data, &ev); err != nil {
		return nil
	}
	return &store.Sent{ID: ev.ID, TS: ev.TS, Recipients: sub.recipients, Slots: sub.slots}
}
