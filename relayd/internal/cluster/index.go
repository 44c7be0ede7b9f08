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
	"github.com/nats-io/nuid"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// index is this node's view of the stream: every message and event applied,
// in stream order, to a memory store that answers reads (mailboxes,
// history, receipts, sessions). Every node keeps one; a node that starts
// rebuilds it from the stream before it serves.
//
// It follows the stream with an ordered consumer, which lives on one NATS
// server. When that server dies the library makes a new one elsewhere,
// but not always: after a kill -9 the JetStream leader still counts the
// dead server as online (for minutes, until it misses its reports) and
// may place the new consumer there; the library then asks for that same
// consumer again and again, and the index stops for good while the
// stream goes on ("cluster index at seq 6, waiting for 17"). So the index
// watches itself (watch): behind a seq the stream is known to hold and no
// progress for stallAfter, it makes a consumer of its own from the next
// seq, which the leader places on a server that answers.
type index struct {
	mem  *store.Memory
	log  *slog.Logger
	node string // names its consumers (consumerPrefix)
	js   jetstream.JetStream
	// lastSeq asks the stream for its last seq (0 when it holds no
	// message), for the watchdog of an index that may have stopped.
	lastSeq func(context.Context) (uint64, error)

	// applyMu orders apply: for a moment a consumer being replaced and
	// its replacement may both deliver, each in stream order.
	applyMu sync.Mutex

	mu       sync.Mutex
	onMail   func(recipient string) // a message reached recipient's mailbox
	applied  uint64                 // the last stream seq applied
	known    uint64                 // the stream is known to hold every seq up to this one
	changed  chan struct{}
	waiters  map[string]chan int // op id → result of applying it
	cc       jetstream.ConsumeContext
	restarts uint64 // consumers the watchdog replaced

	consumeWarn, restartWarn rateLimit
	poke                     chan struct{} // the consumer reported an error
	quit                     chan struct{} // closed by stop
	watching                 chan struct{} // closed when watch returns
}

// The watchdog's pace. The library notices a silent consumer after two
// missed heartbeats (2 s) and usually replaces it within a second after;
// stallAfter leaves it that time before the index replaces it itself.
const (
	watchEvery   = 500 * time.Millisecond // how often the watchdog looks
	stallAfter   = 3 * time.Second        // behind with no progress this long: a new consumer
	askEvery     = 2 * time.Second        // an index with nothing to wait for asks the stream this often (and when its consumer reports an error)
	createWithin = 2 * time.Second        // bounds the making of a consumer (tens of ms when it can be made)
	retryWithin  = 500 * time.Millisecond // after a consumer could not be made, the next try
)

func newIndex(log *slog.Logger, node string) *index {
	return &index{mem: store.NewMemory(), log: log, node: node, changed: make(chan struct{}), waiters: map[string]chan int{},
		consumeWarn: rateLimit{every: 10 * time.Second}, restartWarn: rateLimit{every: 10 * time.Second},
		poke: make(chan struct{}, 1), quit: make(chan struct{}), watching: make(chan struct{})}
}

// start follows the stream from its first message on, which holds every
// seq up to last, and watches that it keeps following.
func (ix *index) start(ctx context.Context, js jetstream.JetStream, last uint64, lastSeq func(context.Context) (uint64, error)) error {
	ix.js, ix.lastSeq = js, lastSeq
	ix.saw(last)
	if err := ix.follow(ctx); err != nil {
		close(ix.watching)
		return err
	}
	go ix.watch()
	return nil
}

// follow makes a consumer of the stream from the seq after the last one
// applied and consumes it; a consumer it replaces is stopped.
func (ix *index) follow(ctx context.Context) error {
	from := ix.Applied() + 1
	cfg := jetstream.OrderedConsumerConfig{NamePrefix: consumerPrefix(ix.node) + nuid.Next()}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := ix.js.OrderedConsumer(ctx, streamName, cfg)
	if err != nil {
		return fmt.Errorf("follow stream %s from seq %d: %w", streamName, from, err)
	}
	// A heartbeat every second: the consumer lives on one NATS node, and
	// when that node dies the missed heartbeats are how the client learns
	// to make a new one elsewhere — mail waits for it meanwhile.
	cc, err := cons.Consume(ix.apply, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		// Called with the library's lock held: log and tell the
		// watchdog, nothing more.
		ix.consumeWarn.do(func(skipped int) {
			ix.log.Warn("cluster index: its stream consumer failed", "err", err, "at_seq", ix.Applied(), "more_since", skipped)
		})
		select {
		case ix.poke <- struct{}{}:
		default:
		}
	}), jetstream.PullHeartbeat(time.Second), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("follow stream %s from seq %d: %w", streamName, from, err)
	}
	ix.mu.Lock()
	old := ix.cc
	ix.cc = cc
	ix.mu.Unlock()
	if old != nil {
		// Not waited for: Stop waits while the library is asking for a
		// new consumer of its own (up to 10 s a try).
		go old.Stop()
	}
	return nil
}

// watch replaces the consumer when the index stays behind the stream.
func (ix *index) watch() {
	defer close(ix.watching)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-ix.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	var seen uint64             // applied at the last look
	var behind, asked time.Time // since when behind without progress; last time the stream was asked
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-ix.poke:
			asked = time.Time{} // the consumer is in trouble: is the stream ahead of the index?
		}
		ix.mu.Lock()
		applied, known := ix.applied, ix.known
		ix.mu.Unlock()
		now := time.Now()
		progressed := applied != seen
		seen = applied
		if progressed {
			asked = now // mail flows: no need to ask
		}
		switch {
		case applied >= known:
			behind = time.Time{}
			if now.Sub(asked) >= askEvery {
				asked = now
				actx, acancel := context.WithTimeout(ctx, createWithin)
				if last, err := ix.lastSeq(actx); err == nil {
					ix.saw(last)
				}
				acancel()
			}
		case progressed || behind.IsZero():
			behind = now
		case now.Sub(behind) >= stallAfter:
			ok := ix.restart(ctx, applied, known, now.Sub(behind))
			behind = time.Now()
			if !ok {
				// No consumer (no JetStream leader yet, say): again in
				// a moment, not after another stallAfter.
				behind = behind.Add(retryWithin - stallAfter)
			}
		}
	}
}

// restart replaces the consumer of an index that stalled at seq applied;
// it reports whether it did.
func (ix *index) restart(ctx context.Context, applied, known uint64, stalled time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, createWithin)
	defer cancel()
	began := time.Now()
	err := ix.follow(ctx)
	took := time.Since(began).Round(time.Millisecond)
	if err == nil {
		ix.mu.Lock()
		ix.restarts++
		ix.mu.Unlock()
	}
	if ix.stopped() {
		return false
	}
	ix.restartWarn.do(func(skipped int) {
		if err != nil {
			ix.log.Warn("cluster index: behind the stream and no new consumer yet; trying again", "at_seq", applied, "stream_holds", known,
				"stalled", stalled.Round(time.Millisecond), "err", err, "more_since", skipped)
			return
		}
		ix.log.Warn("cluster index: no progress behind the stream; following it with a new consumer", "at_seq", applied, "stream_holds", known,
			"stalled", stalled.Round(time.Millisecond), "took", took, "more_since", skipped)
	})
	return err == nil
}

func (ix *index) stopped() bool {
	select {
	case <-ix.quit:
		return true
	default:
		return false
	}
}

func (ix *index) stop() {
	if !ix.stopped() {
		close(ix.quit)
	}
	<-ix.watching
	ix.mu.Lock()
	cc := ix.cc
	ix.mu.Unlock()
	if cc != nil {
		cc.Stop()
	}
}

// saw records that the stream holds every seq up to seq: a write's ack, a
// read barrier, the stream's own answer.
func (ix *index) saw(seq uint64) {
	ix.mu.Lock()
	ix.known = max(ix.known, seq)
	ix.mu.Unlock()
}

// Restarts is how many consumers the watchdog replaced.
func (ix *index) Restarts() uint64 {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.restarts
}

// apply runs on the consumer's goroutine, one message at a time. A seq
// already applied is skipped: a consumer being replaced may still deliver
// what its replacement did.
func (ix *index) apply(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	seq := meta.Sequence.Stream
	ix.applyMu.Lock()
	defer ix.applyMu.Unlock()
	if seq <= ix.Applied() {
		return
	}
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

// waitApplied waits until the index holds seq, which the stream holds.
func (ix *index) waitApplied(ctx context.Context, seq uint64) error {
	ix.saw(seq)
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

// consumerPrefix begins the names of node's index consumers, so that an
// operator (and a test) can tell whose consumer a NATS server holds: a
// consumer name takes letters, digits, - and _ only.
func consumerPrefix(node string) string {
	b := []byte(node)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '-'
		}
	}
	if len(b) > 32 {
		b = b[:32]
	}
	return "index_" + string(b) + "_"
}

// rateLimit lets through one call of do per every; do tells it how many
// it held back since.
type rateLimit struct {
	every   time.Duration
	mu      sync.Mutex
	last    time.Time
	skipped int
}

func (r *rateLimit) do(f func(skipped int)) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < r.every {
		r.skipped++
		r.mu.Unlock()
		return
	}
	r.last = now
	skipped := r.skipped
	r.skipped = 0
	r.mu.Unlock()
	f(skipped)
}
