// Package inbox is a session's mail folder, $RELAY_HOME/inbox/<id>. It
// holds the mail the session has received (Inbox), deduplicated by message
// id, with a read flag per message (the unread cursor); the same folder keeps
// the sends the relay has not confirmed yet (Outbox, outbox.go), so that a
// send made while the relay is down leaves once it is back. The folder
// outlives the process, so a session restarted with the same id — a task
// handoff — finds its mail and its read state, and a short-lived hook
// process can read it while the server runs.
//
// On disk the inbox is an append-only log of JSON lines (messages.jsonl): a
// line per received message, per batch of messages marked read and per
// clear. The log is compacted to a snapshot when it grows. Every change is made under an
// advisory lock on messages.lock, and a process that finds the log changed by
// another process reads the new lines first, so two writers lose nothing.
package inbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/filelock"
)

// DefaultLimit is how many messages an inbox keeps. Beyond it the oldest read
// messages are dropped first, then the oldest unread ones; the relay's history
// still has them.
const DefaultLimit = 2000

// Entry is one received message and whether the agent has seen it.
type Entry struct {
	protocol.Message
	ReceivedAt time.Time `json:"received_at"`
	Read       bool      `json:"read"`

	rev uint64 // when it was stored or marked read (Changes)
}

// Query selects entries for List.
type Query struct {
	From        string // only this sender; empty means anyone
	IncludeRead bool   // read messages too (recent history)
	Limit       int    // at most this many, the newest when IncludeRead, else the oldest unread; 0 means no limit
}

// Inbox is the persisted mailbox of one client id. Safe for concurrent use.
type Inbox struct {
	dir      string
	logPath  string
	lockPath string
	limit    int
	now      func() time.Time
	lockWait time.Duration // 0: wait as long as it takes

	mu      sync.Mutex
	lock    *filelock.File // on lockPath, opened at the first change and kept
	f       *os.File       // append handle on logPath
	ident   os.FileInfo
	off     int64 // bytes of logPath applied to the state
	torn    int64 // bytes after off that end in no newline: a write cut short
	lines   int   // records in the log since the last compaction
	entries []*Entry
	byID    map[string]*Entry
	cursor  uint64 // seq of the last message received: the resume point
	rev     uint64 // the last Entry.rev given; never goes back, not even at a reload
	dropped int
	changed chan struct{}
	// written counts writes to the log; synced is the count the last
	// fsync covered. The ack to the relay waits for synced, the tools
	// never do.
	written, synced uint64

	syncMu sync.Mutex             // one fsync at a time; callers meanwhile share the next
	fsync  func(f *os.File) error // (*os.File).Sync; tests hold it to prove nothing waits for it
}

// Options tune an inbox. The zero value is fine.
type Options struct {
	Limit int              // defaults to DefaultLimit
	Now   func() time.Time // defaults to time.Now
	// LockWait bounds how long any call waits for another process's lock
	// on the inbox; past it the call fails with an error wrapping
	// filelock.ErrBusy. 0 waits as long as it takes (the server); hooks,
	// which must answer the agent on time, set it.
	LockWait time.Duration
}

type clearRec struct {
	Unread bool `json:"unread,omitempty"`
}

type record struct {
	Msg      *protocol.Message `json:"msg,omitempty"`
	At       time.Time         `json:"at,omitzero"`
	WasRead  bool              `json:"was_read,omitempty"`
	MarkRead []string          `json:"mark_read,omitempty"`
	Clear    *clearRec         `json:"clear,omitempty"`
	// Cursor sets the resume point: the seq of the last message received
	// (a duplicate too). Written by Add for duplicates, by Clear and at the
	// end of a compacted snapshot.
	Cursor uint64 `json:"cursor,omitempty"`
	// ResetCursor sets the resume point to 0 (Cursor cannot say 0): the
	// relay's mailbox for this id was reset.
	ResetCursor bool `json:"reset_cursor,omitempty"`
	// MaxSeq is the resume point as logs written before Cursor existed
	// kept it (the highest seq seen); read, never written.
	MaxSeq uint64 `json:"max_seq,omitempty"`
}

// Open loads (creating if needed) the inbox in dir.
func Open(dir string, opts Options) (*Inbox, error) {
	if opts.Limit <= 0 {
		opts.Limit = DefaultLimit
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create inbox %s: %w", dir, err)
	}
	b := &Inbox{
		dir:      dir,
		logPath:  filepath.Join(dir, "messages.jsonl"),
		lockPath: filepath.Join(dir, "messages.lock"),
		limit:    opts.Limit,
		now:      opts.Now,
		lockWait: opts.LockWait,
		byID:     map[string]*Entry{},
		changed:  make(chan struct{}),
		fsync:    (*os.File).Sync,
	}
	err := b.locked(func() error { return nil })
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Dir is the inbox directory.
func (b *Inbox) Dir() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dir
}

// locked runs fn with the file lock held and the state brought up to date
// with the log on disk. Call with b.mu held or not at all: it takes b.mu.
func (b *Inbox) locked(fn func() error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lock == nil {
		l, err := filelock.Open(b.lockPath)
		if err != nil {
			return err
		}
		b.lock = l
	}
	var err error
	if b.lockWait > 0 {
		err = b.lock.LockWithin(b.lockWait)
	} else {
		err = b.lock.Lock()
	}
	if err != nil {
		return err
	}
	defer b.lock.Unlock()
	if err := b.refresh(); err != nil {
		return err
	}
	return fn()
}

// refresh applies what other processes appended to the log, or reloads it
// when it was replaced (compacted). Called with b.mu and the file lock held.
func (b *Inbox) refresh() error {
	fi, err := os.Stat(b.logPath)
	if errors.Is(err, os.ErrNotExist) {
		if b.f != nil { // removed under us: start again
			b.f.Close()
			b.f = nil
		}
		b.reset()
		f, err := os.OpenFile(b.logPath, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("create inbox log: %w", err)
		}
		b.f = f
		b.ident, _ = f.Stat()
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat inbox log: %w", err)
	}
	if b.f == nil || !os.SameFile(fi, b.ident) || fi.Size() < b.off {
		if err := b.reopen(); err != nil {
			return err
		}
		b.reset()
	}
	if fi.Size() == b.off {
		return nil
	}
	return b.replayFrom(b.off)
}

// reopen replaces the handle on the log with a new one: the file at
// logPath is another one now (a compaction, here or in another process).
func (b *Inbox) reopen() error {
	if b.f != nil {
		b.f.Close()
		b.f = nil // the next refresh opens it again
	}
	f, err := os.OpenFile(b.logPath, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open inbox log: %w", err)
	}
	b.f = f
	b.ident, _ = f.Stat()
	return nil
}

func (b *Inbox) reset() {
	b.off, b.lines, b.torn = 0, 0, 0
	b.entries = nil
	b.byID = map[string]*Entry{}
	b.cursor = 0
}

// replayFrom applies complete lines of the log from offset off. A partial
// last line is left where it is and counted in b.torn: every write is made
// whole under the file lock this caller holds, so a partial line is one
// whose writer died or hit a full disk, and the next write must start on a
// line of its own rather than finish that one (and be lost with it).
func (b *Inbox) replayFrom(off int64) error {
	r := io.NewSectionReader(b.f, off, 1<<62)
	br := bufio.NewReaderSize(r, 64<<10)
	applied := false
	b.torn = 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] != '\n' {
			b.torn = int64(len(line))
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			off += int64(len(line))
			b.lines++
			var rec record
			if json.Unmarshal(bytes.TrimSpace(line), &rec) == nil {
				b.apply(&rec)
				applied = true
			} // a damaged line is skipped: the relay still holds unacked mail
		}
		if err != nil {
			break // io.EOF or a partial last line, finished by its writer later
		}
	}
	b.off = off
	if applied {
		b.signal()
	}
	return nil
}

func (b *Inbox) apply(rec *record) {
	if rec.MaxSeq > b.cursor {
		b.cursor = rec.MaxSeq
	}
	if m := rec.Msg; m != nil {
		if m.Seq > 0 {
			b.cursor = m.Seq
		}
		if _, dup := b.byID[m.ID]; !dup {
			b.rev++
			e := &Entry{Message: *m, ReceivedAt: rec.At, Read: rec.WasRead, rev: b.rev}
			b.entries = append(b.entries, e)
			b.byID[m.ID] = e
		}
	}
	for _, id := range rec.MarkRead {
		if e := b.byID[id]; e != nil && !e.Read {
			b.rev++
			e.Read, e.rev = true, b.rev
		}
	}
	if c := rec.Clear; c != nil {
		kept := b.entries[:0]
		for _, e := range b.entries {
			if !e.Read && !c.Unread {
				kept = append(kept, e)
			} else {
				delete(b.byID, e.ID)
			}
		}
		clear(b.entries[len(kept):])
		b.entries = kept
	}
	if rec.Cursor > 0 {
		b.cursor = rec.Cursor
	}
	if rec.ResetCursor {
		b.cursor = 0
	}
	b.trim()
}

// trim keeps at most b.limit entries, dropping the oldest read ones first.
func (b *Inbox) trim() {
	// Usually one over (the message just added): one entry out at a
	// time, the oldest read one or else the oldest, without a pass that
	// allocates (this runs at every message once the inbox is full).
	for len(b.entries) > b.limit {
		i := slices.IndexFunc(b.entries, func(e *Entry) bool { return e.Read })
		if i < 0 {
			i = 0
		}
		delete(b.byID, b.entries[i].ID)
		b.entries = slices.Delete(b.entries, i, i+1)
		b.dropped++
	}
}

func (b *Inbox) signal() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// write appends records to the log. Called under locked.
func (b *Inbox) write(recs ...*record) error {
	var buf bytes.Buffer
	if b.torn > 0 {
		buf.WriteByte('\n') // end the torn line: it is skipped, this one is not
	}
	enc := json.NewEncoder(&buf)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("encode inbox record: %w", err)
		}
	}
	n, err := b.f.Write(buf.Bytes())
	if err != nil {
		// What was written is a torn line now: the next write ends it.
		b.torn += int64(n)
		return fmt.Errorf("append to inbox %s: %w", b.logPath, err)
	}
	b.off += b.torn + int64(n)
	b.torn = 0
	b.lines += len(recs)
	b.written++
	for _, r := range recs {
		b.apply(r)
	}
	if b.lines > 2*b.limit+256 {
		return b.compact()
	}
	return nil
}

// Add stores messages not seen before (by id) and returns those that were
// new. The seq of the last message, a duplicate too, becomes the resume
// point: seqs rise within one mailbox, and a relay whose store was reset
// starts again from 1 and resends what it holds, which must move the
// resume point down, not leave it beyond the new mailbox.
func (b *Inbox) Add(msgs ...protocol.Message) ([]Entry, error) {
	var added []Entry
	err := b.locked(func() error {
		var recs []*record
		seen := map[string]bool{}
		cursor := b.cursor
		for i := range msgs {
			m := msgs[i]
			if _, dup := b.byID[m.ID]; dup || seen[m.ID] {
				if m.Seq > 0 && m.Seq != cursor {
					recs = append(recs, &record{Cursor: m.Seq})
					cursor = m.Seq
				}
				continue
			}
			if m.Seq > 0 {
				cursor = m.Seq
			}
			seen[m.ID] = true
			recs = append(recs, &record{Msg: &m, At: b.now().UTC()})
		}
		if len(recs) == 0 {
			return nil
		}
		if err := b.write(recs...); err != nil {
			return err
		}
		for _, r := range recs {
			if r.Msg != nil {
				if e := b.byID[r.Msg.ID]; e != nil {
					added = append(added, *e)
				}
			}
		}
		if len(added) > 0 {
			b.signal()
		}
		return nil
	})
	return added, err
}

// ResumeAfter is the seq of the last message received: the resume point
// sent in hello.
func (b *Inbox) ResumeAfter() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cursor
}

// ResetCursor moves the resume point back to 0. The link calls it when the
// relay's welcome says this id's mailbox never issued the seq held here
// (welcome.last_seq below it): the relay's store was reset and numbers
// again from 1, so the next resume must ask for everything it holds;
// message ids drop what was already received.
func (b *Inbox) ResetCursor() error {
	return b.locked(func() error {
		if b.cursor == 0 {
			return nil
		}
		return b.write(&record{ResetCursor: true})
	})
}

// Refresh reads changes made by other processes. When the log is the file
// already open and as long as what was applied, nothing changed: that
// takes one stat, not the file lock (an open, two flocks and a close),
// and every read of the inbox (relay_receive's list, the watcher at each
// change) starts with a Refresh.
func (b *Inbox) Refresh() error {
	if b.unchanged() {
		return nil
	}
	return b.locked(func() error { return nil })
}

// unchanged reports whether the log on disk is the one applied, whole. A
// write under way in another process that its size does not show yet is
// read by the next Refresh, as if this one had come a moment earlier.
func (b *Inbox) unchanged() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil || b.ident == nil || b.torn > 0 {
		return false
	}
	fi, err := os.Stat(b.logPath)
	return err == nil && os.SameFile(fi, b.ident) && fi.Size() == b.off
}

// List returns entries matching q, oldest first.
func (b *Inbox) List(q Query) []Entry {
	b.Refresh()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Entry
	if q.IncludeRead && q.From == "" {
		out = make([]Entry, 0, len(b.entries))
	}
	for _, e := range b.entries {
		if q.From != "" && e.From != q.From {
			continue
		}
		if e.Read && !q.IncludeRead {
			continue
		}
		out = append(out, *e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ReceivedAt.Before(out[j].ReceivedAt) })
	if q.Limit > 0 && len(out) > q.Limit {
		if q.IncludeRead {
			out = out[len(out)-q.Limit:]
		} else {
			out = out[:q.Limit]
		}
	}
	return out
}

// Get returns the entry with message id, if held.
func (b *Inbox) Get(id string) (Entry, bool) {
	b.Refresh()
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.byID[id]; e != nil {
		return *e, true
	}
	return Entry{}, false
}

// MarkRead marks messages read.
func (b *Inbox) MarkRead(ids ...string) error {
	return b.locked(func() error {
		var todo []string
		for _, id := range ids {
			if e := b.byID[id]; e != nil && !e.Read {
				todo = append(todo, id)
			}
		}
		if len(todo) == 0 {
			return nil
		}
		if err := b.write(&record{MarkRead: todo}); err != nil {
			return err
		}
		b.signal() // read receipts go out now, not at the next refresh
		return nil
	})
}

// Counts returns the number of held and unread messages, and how many were
// dropped by the bound since the inbox was opened.
func (b *Inbox) Counts() (total, unread, dropped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.entries {
		if !e.Read {
			unread++
		}
	}
	return len(b.entries), unread, b.dropped
}

// Clear forgets read messages (and unread ones with includeUnread) and
// returns how many were forgotten. The resume point is kept.
func (b *Inbox) Clear(includeUnread bool) (int, error) {
	n := 0
	err := b.locked(func() error {
		for _, e := range b.entries {
			if includeUnread || e.Read {
				n++
			}
		}
		if n == 0 {
			return nil
		}
		return b.write(&record{Clear: &clearRec{Unread: includeUnread}, Cursor: b.cursor})
	})
	return n, err
}

// Changed returns a channel closed at the next change of the inbox.
func (b *Inbox) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// Close syncs and closes the log.
func (b *Inbox) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeLock()
	if b.f == nil {
		return nil
	}
	err := b.f.Sync()
	if cerr := b.f.Close(); err == nil {
		err = cerr
	}
	b.f = nil
	if err == nil {
		b.synced = b.written
	}
	return err
}

// closeLock closes the lock file (Close, SwitchDir). Called with b.mu held.
func (b *Inbox) closeLock() {
	if b.lock != nil {
		b.lock.Close()
		b.lock = nil
	}
}
