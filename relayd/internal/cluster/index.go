package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// index is this node's view of the stream: every message and event applied,
// in stream order, to a memory store that answers reads (mailboxes,
// history, receipts, sessions). Every node keeps one; a node that starts
// rebuilds it from the stream before it serves.
type index struct {
	mem     *store.Memory
	log     *slog.Logger
	mu      sync.Mutex
	onMail  func(recipient string) // a message reached recipient's mailbox
	applied uint64                 // the last stream seq applied
	changed chan struct{}
	waiters map[string]chan int // op id → result of applying it
	cc      jetstream.ConsumeContext
}

func newIndex(log *slog.Logger) *index {
	return &index{mem: store.NewMemory(), log: log, changed: make(chan struct{}), waiters: map[string]chan int{}}
}

// start follows the stream from its first message on.
func (ix *index) start(ctx context.Context, js jetstream.JetStream) error {
	cons, err := js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("follow stream %s: %w", streamName, err)
	}
	// A heartbeat every second: the consumer lives on one NATS node, and
	// when that node dies the missed heartbeats are how the client learns
	// to make a new one elsewhere — mail waits for it meanwhile.
	cc, err := cons.Consume(ix.apply, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		ix.log.Debug("cluster index: consumer", "err", err)
	}), jetstream.PullHeartbeat(time.Second), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("follow stream %s: %w", streamName, err)
	}
	ix.cc = cc
	return nil
}

func (ix *index) stop() {
	if ix.cc != nil {
		ix.cc.Stop()
	}
}

// apply runs on the consumer's goroutine, one message at a time.
func (ix *index) apply(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	seq := meta.Sequence.Stream
	subj := m.Subject()
	var op, woke string
	result := 0
	switch {
	case strings.HasPrefix(subj, mailPrefix):
		var ev store.Message
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			ix.log.Warn("cluster index: skipping a message it cannot read", "seq", seq, "err", err)
			break
		}
		rcpt := untoken(strings.TrimPrefix(subj, mailPrefix))
		if ix.mem.Place(ev, rcpt, seq) {
			woke = rcpt
		}
	case strings.HasPrefix(subj, evPrefix):
		kind, tok, _ := strings.Cut(strings.TrimPrefix(subj, evPrefix), ".")
		var ev opEvent
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			ix.log.Warn("cluster index: skipping an event it cannot read", "seq", seq, "err", err)
			break
		}
		op = ev.Op
		result = ix.applyEvent(kind, untoken(tok), ev)
	}
	ix.mu.Lock()
	ix.applied = seq
	close(ix.changed)
	ix.changed = make(chan struct{})
	w := ix.waiters[op]
	delete(ix.waiters, op)
	onMail := ix.onMail
	ix.mu.Unlock()
	if w != nil {
		w <- result
	}
	if woke != "" && onMail != nil {
		onMail(woke) // once the seq counts as applied: Pending sees it
	}
}

func (ix *index) applyEvent(kind, client string, ev opEvent) int {
	ctx := context.Background()
	switch kind {
	case "ack":
		ix.mem.AckAt(client, ev.Upto, ev.At)
	case "read":
		n, _ := ix.mem.MarkRead(ctx, client, ev.IDs, ev.Upto, ev.At)
		return n
	case "clear":
		n, _ := ix.mem.Clear(ctx, client, ev.Unread)
		return n
	case "touch":
		if ev.Session != nil {
			ix.mem.Touch(ctx, *ev.Session)
		}
	}
	return 0
}

// expect registers op before it is published; the channel gets the result
// of applying it.
func (ix *index) expect(op string) chan int {
	ch := make(chan int, 1)
	ix.mu.Lock()
	ix.waiters[op] = ch
	ix.mu.Unlock()
	return ch
}

func (ix *index) forget(op string) {
	ix.mu.Lock()
	delete(ix.waiters, op)
	ix.mu.Unlock()
}

// Applied is the last stream seq this node's index holds.
func (ix *index) Applied() uint64 {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.applied
}

// waitApplied waits until the index holds seq.
func (ix *index) waitApplied(ctx context.Context, seq uint64) error {
	for {
		ix.mu.Lock()
		applied, ch := ix.applied, ix.changed
		ix.mu.Unlock()
		if applied >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cluster index at seq %d, waiting for %d: %w", applied, seq, ctx.Err())
		}
	}
}

// barrierTimeout bounds a wait for the index to catch up with the stream.
const barrierTimeout = 5 * time.Second
