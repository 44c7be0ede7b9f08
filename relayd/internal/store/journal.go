package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

// JournalFile is the name of the journal store's file inside the data
// directory.
const JournalFile = "relay.journal"

// JournalOptions tunes the journal store. The zero value is ready to use.
type JournalOptions struct {
	// Logger receives warnings: a torn last record cut off at open, write
	// failures and the recovery that follows them. Defaults to a logger
	// that discards everything.
	Logger *slog.Logger
	// CompactAt is the size past which Open rewrites the journal as a
	// snapshot of what it holds (the messages, mailboxes, sessions, refs
	// and holds left), so that acks, reads, clears and pruned messages
	// stop costing space and replay time. Defaults to 64 MiB; negative
	// never compacts.
	CompactAt int64
	// SyncEvery is how often the writer fsyncs the file when it wrote
	// since the last fsync: what a power cut can lose. Defaults to 1s.
	SyncEvery time.Duration
	// WriteDelay pauses every write of the journal this long. It is fault
	// injection, for the kill -9 tests alone: they need a crash to fall
	// between a message's hand-off to a provisional reader and its write,
	// which is otherwise a few microseconds. Zero in use.
	WriteDelay time.Duration
}

// JournalStore is a Store kept in memory (a Memory) and made durable by an
// append-only journal of its writes: one file, every send, ack, read
// report, session, clear, prune and hold appended as a record in the order
// they were applied, and replayed at open.
//
// Why: a send through the SQLite store costs two b-tree inserts and their
// indexes in a transaction, several times the CPU of forwarding the
// message; here it costs encoding one record, and a batch of them one
// write(2) (group commit: one goroutine writes whatever queued while it
// wrote the last batch). docs/benchmarks.md has the measurements.
//
// Durability is SQLite's WAL with synchronous=NORMAL: a write's record is
// in the kernel's page cache before the write is answered (accepted,
// acked), so kill -9 of relayd loses nothing answered; the file is fsynced
// every SyncEvery and at Close, so a power cut may lose the last second.
//
// Reads are Memory's. They see a send as soon as it is submitted, before
// its record is written, as provisional readers do on SQLite: a send whose
// write fails is taken back out (its seqs stay unused) and its sender is
// told it was not stored. An ack, read report, clear, prune or hold whose
// write fails keeps its effect in memory and returns the error; a restart
// forgets it (acks and reads are reported again by clients that resume).
type JournalStore struct {
	path       string
	log        *slog.Logger
	mem        *Memory
	unlock     func()
	f          *os.File
	syncEvery  time.Duration
	writeDelay time.Duration // JournalOptions.WriteDelay

	// mu orders the writes: each is applied to mem and queued for the
	// writer under it, so the file holds them in the order they were
	// applied, and replay rebuilds the same state.
	mu      sync.Mutex
	queue   []*jop
	recs    []byte // the queue's records, in its order
	refs    map[string]*jWindow
	closed  bool
	lastErr error // of the last write; nil once one succeeded

	writing   bool        // a goroutine writes the queue (enqueue)
	lazyArmed bool        // lazyTimer runs for records queued with no writer
	lazyTimer *time.Timer // fires writeLoop's flush of lazy records
	idle      *sync.Cond  // on mu: writing became false
	spare     []*jop      // the last batch's slice, for the next queue
	spareRecs []byte      // and its records' buffer

	wake    chan struct{} // passes the writer role to writeLoop
	quit    chan struct{}
	stopped chan struct{}
	size    atomic.Int64 // bytes of whole records in the file
	dirty   atomic.Bool  // written since the last fsync

	// Owned by the writer.
	broken     error    // the file could not be cut back after a failed write
	compactAt  int64    // compact once the file is past this and twice compacted
	compacted  int64    // the size of the last snapshot, 0 before the first
	compacting bool     // a snapshot is being written beside the journal
	tail       blockBuf // while compacting: the records written since its snapshot; appended under tailMu
	// tailMu: compactBeside reads the tail written so far (the writer
	// only appends to it while a compaction is under way).
	tailMu sync.Mutex
	// dirPending: a compaction renamed its snapshot over the journal and
	// the directory is not fsynced yet; writeLoop does it, with the file.
	dirPending atomic.Bool

	syncFile       atomic.Pointer[os.File] // the file writeLoop fsyncs: f, read without the writer role
	stopCompaction atomic.Bool             // Close: a snapshot being written is abandoned
	compactions    sync.WaitGroup          // compactBeside goroutines

	// hookWrite, when set (tests only), runs before each write of the
	// journal; an error fails the batch as a full disk would.
	hookWrite atomic.Pointer[func([]byte) error]
	// hookSnapshot, when set (tests only), runs before a compaction's
	// snapshot is written beside the journal.
	hookSnapshot atomic.Pointer[func()]
}

// jop is one write waiting for the writer. Its record is in
// JournalStore.recs (a retry writes none); an op with neither sub nor done
// is a lazy record (writeLazy), which nobody waits for.
type jop struct {
	sub      *jSend        // a send (or a retry of one)
	done     chan struct{} // a write whose caller waits; err is set before it closes
	err      error
	snapshot *snapshotFile // a compaction's snapshot, written, to take the journal's place
}

// snapshotFile is a snapshot written beside the journal (compactBeside):
// the file, open at its end, and its size; or why it could not be written.
type snapshotFile struct {
	f    *os.File
	size int64
	err  error
	// synced is how much of the writer's tail compactBeside appended to f
	// and fsynced already.
	synced int
	// old is the journal f replaced, for compactBeside to close: the last
	// close of a file renamed over frees its blocks, 25 ms for a journal
	// of 200 000 messages, which sends must not wait for.
	old *os.File
}

// jSend is a Submit on its way to the disk.
type jSend struct {
	id         string
	from       string
	recipients []string
	slots      []Slot
	ref        *SendRef
	sent       *Sent      // with a ref: the record a retry is answered with
	entry      *jRefEntry // with a ref: its entry in the sender's window
	done       func(Submitted)
	// A retry of a send found in the sender's window: answered with
	// first's record (first is nil when that was on disk already).
	retry bool
	first *jSend
	// failed: the write failed, and the send was taken back out. Set
	// under mu before any done of its batch runs.
	failed bool
}

// jWindow is one sender's recent send refs: the newest protocol.RefWindow
// of them (up to refTrimEvery more between trims).
type jWindow struct {
	byRef map[string]*jRefEntry
	order []*jRefEntry // oldest first
}

type jRefEntry struct {
	ref    string
	digest [32]byte
	sent   *Sent
	first  *jSend // while its record is not written; nil after
}

// OpenJournal opens (creating if needed) the journal store in dir, replays
// its journal, and starts its writer. The caller must Close it.
func OpenJournal(ctx context.Context, dir string, opts JournalOptions) (*JournalStore, error) {
	j := &JournalStore{
		path:       filepath.Join(dir, JournalFile),
		log:        opts.Logger,
		mem:        NewMemory(),
		syncEvery:  opts.SyncEvery,
		writeDelay: opts.WriteDelay,
		refs:       map[string]*jWindow{},
		wake:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	j.idle = sync.NewCond(&j.mu)
	j.lazyTimer = time.NewTimer(time.Hour)
	j.lazyTimer.Stop()
	if j.log == nil {
		j.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if j.syncEvery <= 0 {
		j.syncEvery = time.Second
	}
	compactAt := opts.CompactAt
	if compactAt == 0 {
		compactAt = 64 << 20
	}
	unlock, err := takeDataDir(dir, FileName)
	if err != nil {
		return nil, err
	}
	j.unlock = unlock
	if err := j.open(ctx, compactAt); err != nil {
		unlock()
		return nil, err
	}
	go j.writeLoop()
	return j, nil
}

// keepTornEnd copies the bytes of f from off to size, which replay took
// for a torn last write, into a file beside it (relay.journal.torn-TIME)
// before they are cut off: what relayd cannot read is never destroyed,
// should it be more than a torn write (a file that is not a journal).
func keepTornEnd(f *os.File, off, size int64) (string, error) {
	path := fmt.Sprintf("%s.torn-%s", f.Name(), time.Now().UTC().Format("20060102T150405.000000000"))
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, io.NewSectionReader(f, off, size-off)); err != nil {
		out.Close()
		os.Remove(path)
		return "", err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(path)
		return "", err
	}
	return path, out.Close()
}

// open replays the journal into j.mem, compacts it when it is large, and
// leaves j.f open for appending.
func (j *JournalStore) open(ctx context.Context, compactAt int64) error {
	// A snapshot a crash caught before its rename is not the journal (the
	// rename is what makes it one): the journal beside it holds everything.
	if err := os.Remove(j.snapshotTemp()); err == nil {
		j.log.Info("removed the snapshot of a compaction that did not finish", logKeyPath, j.snapshotTemp())
	}
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open message journal %s: %w — make it and its directory writable by the user running relayd, or choose another --data-dir", j.path, err)
	}
	good, err := j.replay(ctx, f)
	if err != nil {
		f.Close()
		return err
	}
	j.mem.setAllWritten()
	if fi, err := f.Stat(); err == nil && fi.Size() > good {
		aside, err := keepTornEnd(f, good, fi.Size())
		if err != nil {
			f.Close()
			return fmt.Errorf("keep the torn end of message journal %s aside before cutting it off: %w — free some space on its disk, or make its directory writable by the user running relayd", j.path, err)
		}
		j.log.Warn("message journal ended in a torn record (relayd stopped in the middle of a write); cut it off, its bytes kept aside",
			logKeyPath, j.path, "kept_bytes", good, "cut_bytes", fi.Size()-good, "aside", aside)
		if err := f.Truncate(good); err != nil {
			f.Close()
			return fmt.Errorf("cut the torn end off message journal %s: %w — make the file writable by the user running relayd", j.path, err)
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("open message journal %s: %w", j.path, err)
	}
	j.f = f
	j.syncFile.Store(f)
	j.size.Store(good)
	j.compactAt = compactAt
	if compactAt > 0 && good > compactAt {
		if err := j.compact(j.collect()); err != nil {
			// The journal as it is still holds everything: go on with it.
			j.log.Warn("could not compact the message journal; keeping it as it is", logKeyPath, j.path, logKeyErr, err)
		}
	}
	return nil
}

// Close stops taking writes, waits for the ones queued, fsyncs the
// journal and releases the data directory.
func (j *JournalStore) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	for j.writing {
		j.idle.Wait()
	}
	if len(j.queue) > 0 { // lazy records no batch took yet
		j.writing = true
		j.mu.Unlock()
		j.lead(nil)
		j.mu.Lock()
		for j.writing {
			j.idle.Wait()
		}
	}
	j.mu.Unlock()
	j.stopCompaction.Store(true) // the journal holds everything: its snapshot is not needed
	j.compactions.Wait()
	close(j.quit)
	<-j.stopped
	if j.dirPending.Swap(false) {
		j.syncDir()
	}
	err := j.f.Sync()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	j.unlock()
	if err != nil {
		return fmt.Errorf("close message journal %s: %w", j.path, err)
	}
	return nil
}

func (j *JournalStore) closedError() error {
	return fmt.Errorf("%w: message journal %s is closed (relayd is shutting down)", ErrUnavailable, j.path)
}

// Group commit, with a leader. The goroutine that queues a write while no
// one writes becomes the writer: it writes the queue itself (one write(2)),
// answers it, and returns, so a lone send costs no hand-off to another
// goroutine. Writes queued meanwhile form the next batch, which the
// background writer takes over: a busy relay's senders do not take turns
// writing for each other.

// enqueue queues op and reports whether the caller became the writer: it
// must then call lead once it released mu. Called with mu held.
func (j *JournalStore) enqueue(op *jop) (lead bool) {
	j.queue = append(j.queue, op)
	if j.writing {
		return false
	}
	j.writing = true
	return true
}

// lead writes the queue as its writer: one batch, then the background
// writer takes what queued meanwhile. own is the send of the Submit whose
// goroutine leads, if one does: its done runs on its caller's goroutine
// (Submitted.OnCaller).
func (j *JournalStore) lead(own *jSend) {
	j.mu.Lock()
	batch, recs := j.queue, j.recs
	j.queue, j.recs = j.spare[:0], j.spareRecs[:0]
	j.spare, j.spareRecs = nil, nil
	var st *snapshotState
	if size := j.size.Load(); !j.compacting && j.compactAt > 0 && size > j.compactAt && size > 2*j.compacted && j.broken == nil && !j.closed {
		// The snapshot holds this batch's writes (applied before they
		// were queued) and nothing after: mu is held. Copying memory
		// takes milliseconds; writing it out takes seconds for a large
		// journal, so that is done beside the writer (compactBeside).
		st = j.collect()
	}
	j.mu.Unlock()
	err := j.writeBatch(batch, recs, own)
	switch {
	case st != nil && err == nil: // a failed batch was taken back out of memory, but not out of st
		j.tailMu.Lock()
		j.compacting, j.tail = true, blockBuf{}
		j.tailMu.Unlock()
		j.compactions.Add(1)
		go j.compactBeside(st)
	case j.compacting && err == nil:
		j.tailMu.Lock()
		j.tail.append(recs) // past what compactBeside may be reading
		j.tailMu.Unlock()
	}
	for _, op := range batch {
		if op.snapshot != nil {
			j.replaceWith(op.snapshot)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.spare = batch[:0]
	clear(batch[:cap(batch)])
	if cap(recs) <= 1<<20 { // a burst's buffer is not kept
		j.spareRecs = recs[:0]
	}
	if len(j.queue) > 0 {
		j.wake <- struct{}{} // the writer role passes on; the channel holds one
		return
	}
	j.writing = false
	j.idle.Broadcast()
}

// lazyDelay is how long a record that nobody waits for (an ack, a read
// report, a session) may wait for the next batch before it is written on
// its own. Clients ack and report reads after nearly every message: on
// their own those records cost a write(2) each; riding with the next send's
// they cost nothing. A crash loses at most this much of them, and a lost
// ack or read is reported again by the client that resumes.
const lazyDelay = 10 * time.Millisecond

// writeLazy queues a record whose caller does not wait for it: the next
// batch takes it, or the background writer after lazyDelay. Called with mu
// held.
func (j *JournalStore) writeLazy(kind byte, v any) error {
	var err error
	if j.recs, err = appendRecord(j.recs, kind, v); err != nil {
		return err
	}
	j.queue = append(j.queue, &jop{})
	if !j.writing && !j.lazyArmed {
		j.lazyArmed = true
		j.lazyTimer.Reset(lazyDelay)
	}
	return j.lastErr
}

// writeSync queues rec and waits until it is written. Called with mu held;
// it returns with mu released.
func (j *JournalStore) writeSync(kind byte, v any) error {
	var err error
	if j.recs, err = appendRecord(j.recs, kind, v); err != nil {
		j.mu.Unlock()
		return err
	}
	op := &jop{done: make(chan struct{})}
	lead := j.enqueue(op)
	j.mu.Unlock()
	if lead {
		j.lead(nil)
	}
	// Not cut short by the caller's context: the write is applied in
	// memory already, and reporting "cancelled" for one that reached the
	// disk would be wrong. The writer answers every op it took.
	<-op.done
	return op.err
}

// writeLoop is the background writer: it writes the batches a leader
// passed on, and fsyncs the file every syncEvery when it was written.
func (j *JournalStore) writeLoop() {
	defer close(j.stopped)
	tick := time.NewTicker(j.syncEvery)
	defer tick.Stop()
	for {
		select {
		case <-j.wake:
			j.lead(nil)
		case <-j.lazyTimer.C:
			j.mu.Lock()
			j.lazyArmed = false
			lead := !j.writing && len(j.queue) > 0
			if lead {
				j.writing = true
			}
			j.mu.Unlock()
			if lead {
				j.lead(nil)
			}
		case <-tick.C:
			if j.dirPending.Swap(false) {
				j.syncDir()
			}
			if j.dirty.Swap(false) {
				// The writer may replace the file meanwhile (replaceWith),
				// and fsyncs the new one itself.
				if err := j.syncFile.Load().Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
					j.log.Warn("could not fsync the message journal", logKeyPath, j.path, logKeyErr, err)
				}
			}
		case <-j.quit:
			return // Close waited until no one writes
		}
	}
}

// compactBeside writes the snapshot st beside the journal while the writer
// goes on appending to the journal, then hands it to the writer, which
// appends what it wrote meanwhile (tail) and puts it in the journal's
// place (replaceWith): sends wait for the copy of memory (collect), not for
// the snapshot's write.
func (j *JournalStore) compactBeside(st *snapshotState) {
	defer j.compactions.Done()
	if h := j.hookSnapshot.Load(); h != nil {
		(*h)()
	}
	sf := &snapshotFile{}
	sf.f, sf.size, sf.err = j.writeSnapshotTemp(st)
	if sf.err == nil {
		j.syncTail(sf)
	}
	op := &jop{snapshot: sf, done: make(chan struct{})}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		if sf.err == nil {
			j.discardSnapshot(sf.f)
		}
		return
	}
	lead := j.enqueue(op)
	j.mu.Unlock()
	if lead {
		j.lead(nil)
	}
	<-op.done
	if sf.old != nil {
		sf.old.Close()
	}
}

// syncTail appends to sf's file the records the writer wrote since the
// snapshot was taken, so far, and fsyncs them: beside the writer, which
// then has only what came after to append before the rename
// (replaceWith). Sends wait while the writer does that; at 200 000
// messages the fsync of the whole tail there held them 50–60 ms.
func (j *JournalStore) syncTail(sf *snapshotFile) {
	j.tailMu.Lock()
	tail := j.tail.view() // the writer appends past it, and does not reset it before replaceWith
	j.tailMu.Unlock()
	n, err := tail.writeFrom(sf.f, 0)
	if err == nil {
		err = sf.f.Sync()
	}
	if err != nil {
		j.discardSnapshot(sf.f)
		sf.err = err
		return
	}
	sf.size += int64(n)
	sf.synced = n
}

// replaceWith completes a compaction: it appends the records written since
// syncTail to sf's file and renames it over the journal, which it then
// appends to. A crash before the rename leaves the journal, which holds
// everything; one after, the snapshot and its tail. What was appended here
// is fsynced by writeLoop within syncEvery, as any write, and so is the
// directory with the rename: a power cut may lose the last second either
// way (docs/operations.md). Only the writer calls it.
func (j *JournalStore) replaceWith(sf *snapshotFile) {
	tail := j.tail
	j.compacting, j.tail = false, blockBuf{}
	err := sf.err
	if err == nil && j.broken != nil {
		err = j.broken
		j.discardSnapshot(sf.f)
	}
	var n int
	if err == nil {
		if n, err = tail.writeFrom(sf.f, sf.synced); err != nil {
			j.discardSnapshot(sf.f)
		} else {
			err = j.renameSnapshot(sf.f)
		}
	}
	if err != nil {
		j.log.Warn("could not compact the message journal; it goes on growing", logKeyPath, j.path, logKeyErr, err)
		j.compacted = j.size.Load() // not again before it doubles
		return
	}
	sf.old = j.f
	j.setFile(sf.f, sf.size+int64(n))
	j.dirty.Store(true)
	j.dirPending.Store(true)
}

// writeBatch writes batch's records, b, with one write, answers each op
// and returns the write's error. Only the writer calls it.
func (j *JournalStore) writeBatch(batch []*jop, b []byte, own *jSend) error {
	err := j.writeRecords(b)
	if err == nil && len(b) > 0 {
		j.dirty.Store(true)
	}
	j.settle(batch, err, own)
	return err
}

// settle records what became of batch (written, or not with err) and
// answers each op.
func (j *JournalStore) settle(batch []*jop, err error, own *jSend) {
	j.mu.Lock()
	for _, op := range batch {
		s := op.sub
		if s == nil || s.retry {
			continue
		}
		if err != nil {
			s.failed = true
			j.mem.unappend(s.id, s.recipients, s.slots)
			if s.entry != nil {
				j.window(s.from).forget(s)
			}
			continue
		}
		j.mem.setWritten(s.recipients, s.slots)
		if e := s.entry; e != nil && e.first == s {
			e.first = nil // on disk
		}
	}
	if (err == nil) != (j.lastErr == nil) {
		if err != nil {
			j.log.Error("message journal write failed", logKeyPath, j.path, logKeyBatch, len(batch), logKeyErr, err)
		} else {
			j.log.Info("message journal writes work again", logKeyPath, j.path)
		}
	}
	j.lastErr = err
	j.mu.Unlock()
	for _, op := range batch {
		switch {
		case op.sub != nil:
			op.sub.answer(err, op.sub == own)
		case op.done != nil:
			op.err = err
			close(op.done)
		}
	}
}

// answer runs the send's done once its batch is written (err nil) or not.
func (s *jSend) answer(err error, onCaller bool) {
	switch {
	case s.retry && s.first != nil && s.first.failed:
		s.done(Submitted{Err: fmt.Errorf("the first attempt of send %s failed before it was stored; send it again", s.ref.Ref)})
	case s.retry:
		s.done(Submitted{Dup: s.sent})
	case err != nil:
		s.done(Submitted{Err: fmt.Errorf("store message %s: %w", s.id, err), Early: true})
	default:
		s.done(Submitted{Slots: s.slots, Early: true, OnCaller: onCaller})
	}
}

// writeRecords appends b to the file. After a failed write it cuts the file
// back to its last whole record, so the next write does not follow a torn
// one; if even that fails, writes stay refused until relayd restarts.
func (j *JournalStore) writeRecords(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if j.broken != nil {
		return j.broken
	}
	if h := j.hookWrite.Load(); h != nil {
		if err := (*h)(b); err != nil {
			return j.writeError(err)
		}
	}
	if j.writeDelay > 0 {
		time.Sleep(j.writeDelay)
	}
	size := j.size.Load()
	n, err := j.f.Write(b)
	if err == nil {
		j.size.Store(size + int64(n))
		return nil
	}
	if n > 0 {
		if terr := j.f.Truncate(size); terr != nil {
			j.broken = fmt.Errorf("%w: message journal %s holds a torn record that could not be cut off (%v): restart relayd, which cuts it at open", ErrUnavailable, j.path, terr)
			return j.broken
		}
		if _, serr := j.f.Seek(size, io.SeekStart); serr != nil {
			j.broken = fmt.Errorf("%w: message journal %s: %v: restart relayd", ErrUnavailable, j.path, serr)
			return j.broken
		}
	}
	return j.writeError(err)
}

// writeError wraps a failed write so that errors.Is(err, ErrUnavailable)
// holds, keeps the cause, and says what the operator can do.
func (j *JournalStore) writeError(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	hint := ""
	switch {
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || strings.Contains(err.Error(), "no space left"):
		hint = hintDiskFull
	case errors.Is(err, syscall.EROFS) || errors.Is(err, os.ErrPermission):
		hint = hintNotWritable
	case errors.Is(err, syscall.EIO):
		hint = hintIOError
	}
	return unavailable(j.path, err, hint)
}

// window returns client's ref window, creating it. Called with mu held.
func (j *JournalStore) window(client string) *jWindow {
	w := j.refs[client]
	if w == nil {
		w = &jWindow{byRef: map[string]*jRefEntry{}}
		j.refs[client] = w
	}
	return w
}

func (w *jWindow) find(ref *SendRef) *jRefEntry {
	if e := w.byRef[ref.Ref]; e != nil && e.digest == ref.Digest {
		return e
	}
	return nil
}

func (w *jWindow) add(ref string, digest [32]byte, sent *Sent, first *jSend) *jRefEntry {
	e := &jRefEntry{ref: ref, digest: digest, sent: sent, first: first}
	w.byRef[ref] = e
	w.order = append(w.order, e)
	if len(w.order) > protocol.RefWindow+refTrimEvery {
		drop := len(w.order) - protocol.RefWindow
		for _, old := range w.order[:drop] {
			if w.byRef[old.ref] == old {
				delete(w.byRef, old.ref)
			}
		}
		w.order = append(w.order[:0], w.order[drop:]...)
	}
	return e
}

// forget drops s's entry: its write failed.
func (w *jWindow) forget(s *jSend) {
	e := s.entry
	if e == nil || e.first != s {
		return
	}
	if w.byRef[e.ref] == e {
		delete(w.byRef, e.ref)
	}
	for i, o := range w.order {
		if o == e {
			w.order = append(w.order[:i], w.order[i+1:]...)
			break
		}
	}
}
