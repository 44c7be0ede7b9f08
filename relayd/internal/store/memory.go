package store

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"
)

// Memory is a Store in process memory: fast, and forgotten on restart. It is
// what relayd uses with --store memory and what the hub's tests run on.
type Memory struct {
	mu        sync.Mutex
	sessions  map[string]*SessionInfo
	mailboxes map[string]*mailbox
	order     chunked[*memMsg] // every message, sorted by id (oldest first): byID finds one
	// hidden: the clients that cleared each message from their history
	// (Clear); only messages someone cleared are in it.
	hidden map[*memMsg]map[string]bool
	// oldest: no message is older (a bound: what goes out may leave it
	// lower than the oldest left; each Prune's walk makes it exact). The
	// hourly retention sweep finds nothing old enough to go nearly every
	// time, and then need not walk every message holding the lock.
	oldest time.Time

	HoldBook // the operator's holds (holds.go)
}

type memMsg struct {
	Message
	// box and more: the mailboxes it was put in, and its seq in each
	// (mailbox.put; slots lists them). Nearly every message goes to one
	// mailbox: its slot is kept here, not in a slice of its own (an
	// object fewer a message, and 16 bytes). A clear or prune that takes
	// it out of one leaves its slot here: in checks the mailbox.
	box  memSlot
	more *[]memSlot
	// Who cleared it from their history is in Memory.hidden: few ever are.
}

// hideFor records that client cleared mm from its history. Called with mu
// held.
func (m *Memory) hideFor(mm *memMsg, client string) {
	if m.hidden == nil {
		m.hidden = map[*memMsg]map[string]bool{}
	}
	if m.hidden[mm] == nil {
		m.hidden[mm] = map[string]bool{}
	}
	m.hidden[mm][client] = true
}

// slots yields the mailboxes mm was put in, with its seq in each.
func (mm *memMsg) slots() iter.Seq[memSlot] {
	return func(yield func(memSlot) bool) {
		if mm.box.box == nil || !yield(mm.box) || mm.more == nil {
			return
		}
		for _, s := range *mm.more {
			if !yield(s) {
				return
			}
		}
	}
}

// addSlot records that mm was put in a mailbox.
func (mm *memMsg) addSlot(s memSlot) {
	switch {
	case mm.box.box == nil:
		mm.box = s
	case mm.more == nil:
		mm.more = &[]memSlot{s}
	default:
		*mm.more = append(*mm.more, s)
	}
}

type memSlot struct {
	box *mailbox // mailboxes are never dropped, so this is the id's for good
	seq uint64
}

// in reports whether b holds mm: the history and timeline filters ask it
// of every message they look at, so it is a look at mm's own slots and
// one index of b, not a walk of b.
func (mm *memMsg) in(b *mailbox) bool {
	if b == nil {
		return false
	}
	for s := range mm.slots() {
		if s.box != b {
			continue
		}
		if _, ok := s.find(mm); ok {
			return true
		}
	}
	return false
}

// find is where mm's entry is in s's mailbox; false when it is no longer
// there.
func (s memSlot) find(mm *memMsg) (int, bool) {
	if i, ok := s.box.index(s.seq); ok && s.box.entries.get(i).msg == mm {
		return i, true
	}
	return 0, false
}

type mailbox struct {
	id       string            // whose it is
	entries  chunked[memEntry] // ascending seq
	last     uint64
	acked    uint64
	lastRead time.Time // when the client last reported reading (receipts.go)
	// readThrough: every entry up to this seq is read (MarkRead).
	readThrough uint64
	// written: every seq up to this one is on disk (the journal store's;
	// Memory on its own does not use it).
	written uint64
	// unread counts the entries not read yet (read zero): the peer
	// list's unread counts ask it of every mailbox.
	unread int
	// to is []string{id}: the To of every message sent to this mailbox
	// alone shares it (toOf), rather than each keeping its own copy.
	to []string
}

type memEntry struct {
	seq uint64
	msg *memMsg
	// delivered is when the client acked it, read when it reported it
	// shown to its model, in Unix nanoseconds (nanos); 0 until then. Not
	// time.Time: an entry is kept for every message of every mailbox, and
	// two times with their location pointers doubled its size and gave
	// the garbage collector two more pointers to look at.
	delivered, read int64
}

// NewMemory returns an empty memory store.
func NewMemory() *Memory {
	return &Memory{sessions: map[string]*SessionInfo{}, mailboxes: map[string]*mailbox{}}
}

func (m *Memory) box(id string) *mailbox {
	b := m.mailboxes[id]
	if b == nil {
		b = &mailbox{id: id}
		m.mailboxes[id] = b
	}
	return b
}

// addMsg stores msg, not yet in any mailbox. Called with mu held.
func (m *Memory) addMsg(msg Message) *memMsg {
	mm := &memMsg{Message: msg}
	mm.To = m.toOf(msg.To)
	if m.order.len() == 0 || msg.TS.Before(m.oldest) {
		m.oldest = msg.TS
	}
	m.insertOrdered(mm)
	return mm
}

// toOf is the To a stored message keeps: for a message to one known
// mailbox, as nearly all are, the mailbox's own []string{id}, shared by
// every message to it (a stored message is never changed, nor is what a
// reader is given of it); otherwise a copy. At 200 000 messages that is
// two allocations a message fewer, the slice and the id the sender's
// frame was decoded into. Called with mu held.
func (m *Memory) toOf(to []string) []string {
	if len(to) != 1 {
		return slices.Clone(to)
	}
	b := m.mailboxes[to[0]]
	if b == nil {
		return slices.Clone(to)
	}
	if b.to == nil {
		b.to = []string{b.id}
	}
	return b.to
}

// insertOrdered puts mm in order, which is sorted by id (ids sort by time)
// even when concurrent senders append in another order than their ids were
// made. Nearly always mm goes at the end: that is checked first, since a
// search of a long history costs a string compare per halving.
func (m *Memory) insertOrdered(mm *memMsg) {
	if n := m.order.len(); n == 0 || m.order.last().ID < mm.ID {
		m.order.append(mm)
		return
	}
	at, _ := m.orderIndex(mm.ID)
	m.order.insert(at, mm)
}

// byID returns the message with this id and its place in order, or nil
// and where it would go. Order is sorted by id, so no map of every
// message is kept beside it: such a map cost a relay holding 200 000
// messages a tenth of its heap, and its collector as many pointers again
// as order. The newest id is checked first (a new message's id is nearly
// always past every other), then a binary search: a few string compares
// for the few ids that receipts, read reports and replay look up. Called
// with mu held.
func (m *Memory) byID(id string) (int, *memMsg) {
	n := m.order.len()
	if n == 0 || id > m.order.last().ID {
		return n, nil
	}
	at, ok := m.orderIndex(id)
	if !ok {
		return at, nil
	}
	return at, m.order.get(at)
}

// orderIndex is where id is in order, or would go, and whether it is
// there. Called with mu held.
func (m *Memory) orderIndex(id string) (int, bool) {
	at := m.order.search(func(mm *memMsg) bool { return mm.ID >= id })
	return at, at < m.order.len() && m.order.get(at).ID == id
}

// put adds e, the next entry, to b. Called with the store's mu held.
func (b *mailbox) put(e memEntry) {
	if e.read == 0 {
		b.unread++
	}
	b.entries.append(e)
	e.msg.addSlot(memSlot{box: b, seq: e.seq})
}

// dropped counts e, taken out of b, out of b's unread count.
func (b *mailbox) dropped(e memEntry) {
	if e.read == 0 {
		b.unread--
	}
}

func (b *mailbox) unacked() int {
	i, _ := b.index(b.acked + 1)
	return b.entries.len() - i
}

// index is where seq is in b.entries, or would go, and whether it is
// there. Every send asks it (unacked, pending), of mailboxes that may hold
// a million entries: their seqs are dense but for the gaps clears and
// prunes leave, so the place the first entry's seq points to is tried
// before a search.
func (b *mailbox) index(seq uint64) (int, bool) {
	e := &b.entries
	n := e.len()
	switch {
	case n == 0:
		return 0, false
	case seq <= e.get(0).seq:
		return 0, seq == e.get(0).seq
	case seq > e.get(n-1).seq:
		return n, false
	}
	if g := seq - e.get(0).seq; g < uint64(n) && e.get(int(g)).seq == seq {
		return int(g), true
	}
	i := e.search(func(x memEntry) bool { return x.seq >= seq })
	return i, e.get(i).seq == seq
}

func (m *Memory) Touch(_ context.Context, s SessionInfo) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.sessions[s.ID]; old != nil {
		s.FirstSeen = old.FirstSeen
	} else if s.FirstSeen.IsZero() {
		s.FirstSeen = s.LastSeen
	}
	m.sessions[s.ID] = &s
	return nil
}

func (m *Memory) Known(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, s := m.sessions[id]
	_, b := m.mailboxes[id]
	return s || b, nil
}

func (m *Memory) Sessions(context.Context) ([]SessionInfo, map[string]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]SessionInfo, 0, len(m.sessions))
	queued := map[string]int{}
	for id, s := range m.sessions {
		out = append(out, *s)
		if b := m.mailboxes[id]; b != nil {
			queued[id] = b.unacked()
		}
	}
	for id, b := range m.mailboxes {
		if _, ok := m.sessions[id]; !ok {
			out = append(out, SessionInfo{ID: id})
			queued[id] = b.unacked()
		}
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out, queued, nil
}

func (m *Memory) Append(_ context.Context, msg Message, recipients []string, maxQueue int) ([]Slot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.byID(msg.ID); dup != nil {
		return nil, fmt.Errorf("store message %s: a message with this id is already stored", msg.ID)
	}
	slots := make([]Slot, len(recipients))
	for i, id := range recipients {
		b := m.box(id) // made for every recipient: a full send makes a mailbox known
		slots[i].Full = maxQueue > 0 && b.unacked() >= maxQueue
	}
	if allFull(slots) {
		return slots, nil // stored for no one: not stored (allFull)
	}
	mm := m.addMsg(msg)
	for i, id := range recipients {
		if slots[i].Full {
			continue
		}
		b := m.mailboxes[id]
		b.last++
		b.put(memEntry{seq: b.last, msg: mm})
		slots[i].Seq = b.last
	}
	return slots, nil
}

// Submit implements Store: the memory store commits at once, so done runs
// before Submit returns and nothing is provisional. It keeps no refs: the
// hub's own window recognises retries while the process lives, and the
// memory store does not outlive it.
func (m *Memory) Submit(msg Message, recipients []string, maxQueue int, _ *SendRef, done func(Submitted)) ([]Slot, bool) {
	slots, err := m.Append(context.Background(), msg, recipients, maxQueue)
	done(Submitted{Slots: slots, Err: err, OnCaller: true})
	return slots, false
}

func (m *Memory) Pending(_ context.Context, id string, after uint64, limit int, _ bool) ([]Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.mailboxes[id]
	if b == nil {
		return nil, nil
	}
	return b.pending(after, limit, b.last, false), nil // all of it is committed
}

// pending returns up to limit entries with seq > after and above the ack,
// oldest first. Those above written are marked Provisional, or end the
// list when provisional readers are not asking.
func (b *mailbox) pending(after uint64, limit int, written uint64, provisional bool) []Delivery {
	from := max(after, b.acked) + 1
	i, _ := b.index(from)
	n := b.entries.len() - i
	if limit > 0 {
		n = min(n, limit)
	}
	if n <= 0 {
		return nil
	}
	out := make([]Delivery, 0, n) // a writer asks after nearly every message: one allocation, not a doubling run
	for ; i < b.entries.len() && (limit <= 0 || len(out) < limit); i++ {
		e := b.entries.get(i)
		d := Delivery{Seq: e.seq, Msg: e.msg.Message}
		if e.seq > written {
			if !provisional {
				break
			}
			d.Provisional = true
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (m *Memory) Ack(_ context.Context, id string, upto uint64) error {
	m.AckAt(id, upto, time.Now().UTC())
	return nil
}

// AckAt is Ack with the time the client acked: the nodes of a cluster
// apply an ack each at its own moment, and again when they rebuild their
// index, and must all stamp the time it was made.
func (m *Memory) AckAt(id string, upto uint64, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// An ack for a mailbox that does not exist changes nothing; creating
	// one would make the id Known.
	if b := m.mailboxes[id]; b != nil {
		b.ack(min(upto, b.last), at)
	}
}

// ack moves the ack up to seq to, stamping the entries it passes delivered
// at at. It reports false, changing nothing, when to is not above it.
func (b *mailbox) ack(to uint64, at time.Time) bool {
	if to <= b.acked {
		return false
	}
	b.stampDelivered(b.acked, to, at)
	b.acked = to
	return true
}

func (m *Memory) LastSeq(_ context.Context, id string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.mailboxes[id]; b != nil {
		return b.last, nil
	}
	return 0, nil
}

func (m *Memory) Unacked(_ context.Context, id string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.mailboxes[id]; b != nil {
		return b.unacked(), nil
	}
	return 0, nil
}

// History on Memory walks the messages by id, scanChunk at a time (scan),
// taking those q.Client may see.
func (m *Memory) History(_ context.Context, q HistoryQuery) ([]Message, bool, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	page := historyPage{limit: limit}
	// Newest first so Limit keeps the most recent page, or oldest first
	// from After when paging forward.
	forward := q.After != "" && q.Before == ""
	cursor := q.Before
	if forward {
		cursor = q.After
	}
	m.scan(cursor, forward, func(mm *memMsg) bool {
		if !forward && q.After != "" && mm.ID <= q.After {
			return false // between two cursors: the rest is older still
		}
		if m.hidden != nil && m.hidden[mm][q.Client] {
			return true
		}
		mine := mm.From == q.Client
		if !mine && !mm.in(m.mailboxes[q.Client]) {
			return true
		}
		if q.Thread != "" && mm.Thread != q.Thread {
			return true
		}
		if q.With != "" && !(mine && (slices.Contains(mm.To, q.With) || slices.Contains(mm.To, "*")) || mm.From == q.With) {
			return true
		}
		return page.add(mm.Message) && !page.full()
	})
	msgs, more := page.result(forward)
	return msgs, more, nil
}

func (m *Memory) Clear(_ context.Context, id string, includeUnread bool) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	if b := m.mailboxes[id]; b != nil {
		n += b.drop(func(e memEntry) bool { return e.seq <= b.acked || includeUnread })
		if includeUnread {
			b.acked = b.last
		}
	}
	for i := range m.order.len() {
		if mm := m.order.get(i); mm.From == id && !m.hidden[mm][id] {
			m.hideFor(mm, id)
			n++
		}
	}
	return n, nil
}

// Prune walks the messages once, unless none is old enough to go (oldest);
// only the mailboxes that hold one old enough to go (found from its slots)
// are walked as well.
func (m *Memory) Prune(_ context.Context, before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.oldest.Before(before) {
		return 0, nil
	}
	affected := map[*mailbox]bool{}
	var oldest time.Time
	m.order.keep(func(mm *memMsg) bool {
		if !mm.TS.Before(before) {
			if oldest.IsZero() || mm.TS.Before(oldest) {
				oldest = mm.TS
			}
			return true
		}
		delete(m.hidden, mm)
		for s := range mm.slots() {
			affected[s.box] = true
		}
		return false
	})
	m.oldest = oldest
	n := 0
	for b := range affected {
		n += b.drop(func(e memEntry) bool { return e.msg.TS.Before(before) })
	}
	return n, nil
}

// drop takes the entries gone says out of b, and returns how many.
func (b *mailbox) drop(gone func(memEntry) bool) int {
	return b.entries.keep(func(e memEntry) bool {
		if gone(e) {
			b.dropped(e)
			return false
		}
		return true
	})
}

func (m *Memory) Close() error { return nil }
