package store

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// replay applies the records of f to j's memory, in order, and returns the
// offset after the last whole record. A torn last record (a crash in the
// middle of a write) ends the replay there; a damaged record with data
// after it stops the open with an error naming the way out.
func (j *JournalStore) replay(ctx context.Context, f *os.File) (int64, error) {
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	var hdr [recHeader]byte
	var rec []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return off, nil // the end, or a header cut short
			}
			return 0, fmt.Errorf("read message journal %s: %w", j.path, err)
		}
		n := int(binary.LittleEndian.Uint32(hdr[:]))
		if n == 0 || n > maxRecord {
			return j.damaged(off, f, fmt.Errorf("record length %d out of range", n))
		}
		rec = append(rec[:0], hdr[:]...)
		rec = slices.Grow(rec, n)[:recHeader+n]
		if _, err := io.ReadFull(r, rec[recHeader:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return off, nil // the last record, cut short
			}
			return 0, fmt.Errorf("read message journal %s: %w", j.path, err)
		}
		kind, body, size, err := nextRecord(rec)
		if err != nil {
			return j.damaged(off, f, err)
		}
		if err := j.apply(ctx, kind, body); err != nil {
			return 0, fmt.Errorf("message journal %s, record at byte %d: %w — the file does not hold what relayd wrote: stop relayd, move it aside (mv %s %s.broken) and start again, with an empty store or a backup", j.path, off, err, j.path, j.path)
		}
		off += int64(size)
	}
}

// damaged answers a record at off that is not one. If it is the file's
// last (what a power cut in the middle of a write may leave), replay ends
// before it; with more after it, the file is damaged and the open fails.
func (j *JournalStore) damaged(off int64, f *os.File, cause error) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("read message journal %s: %w", j.path, err)
	}
	// A torn write leaves less than one record past off: a header whose
	// length runs past the end, or garbage shorter than a header.
	var hdr [recHeader]byte
	if _, err := f.ReadAt(hdr[:], off); err == nil {
		n := int64(binary.LittleEndian.Uint32(hdr[:]))
		if off+recHeader+n >= fi.Size() || n > maxRecord {
			if fi.Size()-off <= maxRecord {
				return off, nil
			}
		}
	}
	return 0, fmt.Errorf("message journal %s is damaged at byte %d of %d (%v) — stop relayd, move it aside (mv %s %s.broken) and start again, with an empty store or a backup", j.path, off, fi.Size(), cause, j.path, j.path)
}

// apply replays one record.
func (j *JournalStore) apply(ctx context.Context, kind byte, body []byte) error {
	m := j.mem
	switch kind {
	case recSubmit:
		var r jSubmit
		if err := decodeRecord(body, &r, fastSubmit); err != nil {
			return fmt.Errorf("decode a send: %w", err)
		}
		msg := r.Msg.message()
		if err := m.restore(msg, r.Recipients, r.Seqs); err != nil {
			return err
		}
		if r.Ref != "" {
			return j.replayRef(msg.From, r.Ref, r.Digest, &Sent{ID: msg.ID, TS: msg.TS, Recipients: r.Recipients, Slots: slotsOf(r.Seqs)})
		}
	case recAck:
		var r jAck
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("decode an ack: %w", err)
		}
		m.AckAt(r.ID, r.Upto, fromNanos(r.At))
	case recRead:
		var r jRead
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("decode a read report: %w", err)
		}
		m.MarkRead(ctx, r.Client, r.IDs, r.Upto, fromNanos(r.At))
	case recTouch:
		var r jTouch
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("decode a session: %w", err)
		}
		m.Touch(ctx, r.session())
	case recClear:
		var r jClear
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("decode a clear: %w", err)
		}
		m.Clear(ctx, r.ID, r.Unread)
	case recPrune:
		var r jPrune
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("decode a prune: %w", err)
		}
		m.Prune(ctx, fromNanos(r.Before))
	case recHold:
		var r jHold
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("decode a hold: %w", err)
		}
		m.PutHold(ctx, r.hold())
	case recEndHold:
		var r jEndHold
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("decode a release: %w", err)
		}
		m.EndHold(ctx, r.Pair, r.By, fromNanos(r.At))
	case recMessage:
		var r jMessage
		if err := decodeRecord(body, &r, fastMessage); err != nil {
			return fmt.Errorf("decode a message: %w", err)
		}
		if err := m.restore(r.Msg.message(), nil, nil); err != nil {
			return err
		}
		m.hide(r.Msg.ID, r.Hidden)
	case recBox:
		var r jBox
		if err := decodeRecord(body, &r, fastBox); err != nil {
			return fmt.Errorf("decode a mailbox: %w", err)
		}
		if err := m.restoreBox(r); err != nil {
			return err
		}
	case recRef:
		var r jRef
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("decode a send ref: %w", err)
		}
		return j.replayRef(r.Client, r.Ref, r.Digest, &Sent{ID: r.ID, TS: fromNanos(r.TS), Recipients: r.To, Slots: slotsOf(r.Seqs)})
	case recHolds:
		var r jHolds
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("decode the holds: %w", err)
		}
		m.HoldBook.mu.Lock()
		m.HoldBook.list = m.HoldBook.list[:0]
		for _, h := range r.List {
			m.HoldBook.list = append(m.HoldBook.list, h.hold())
		}
		m.HoldBook.mu.Unlock()
	default:
		return fmt.Errorf("unknown record kind %q (written by a newer relayd?)", kind)
	}
	return nil
}

// replayRef puts a replayed send's ref in its sender's window.
func (j *JournalStore) replayRef(client, ref string, digest []byte, sent *Sent) error {
	var d [32]byte
	if len(digest) != len(d) {
		return fmt.Errorf("send ref %s of %s (message %s) has a digest of %d bytes", ref, client, sent.ID, len(digest))
	}
	copy(d[:], digest)
	j.window(client).add(ref, d, sent, nil)
	return nil
}

// snapshotState is what a snapshot holds, copied from memory so that it
// can be encoded and written without holding any lock.
type snapshotState struct {
	sessions []SessionInfo
	msgs     []jMessage // an export's (ConvertToJournal)
	boxes    []jBox
	// collect's: the messages themselves, which no write changes once
	// they are stored, the blocks of the message list and of the
	// mailboxes' entries as they were (chunked.freeze: a write after
	// collect copies a block before it changes it), and copies of what
	// else writes change (who hid a message, the mailboxes' marks).
	// Every send waits while collect runs: it takes the blocks, not
	// copies of them (at 200 000 messages a copy held the lock 12–16
	// ms), and the records are made from them outside the lock (emit).
	memMsgs  [][]*memMsg
	hidden   map[*memMsg][]string
	memBoxes []boxCopy
	refs     []jRef
	holds    jHolds
}

// boxCopy is a mailbox as collect found it: its marks, and its entries.
// emit hands it to put as it is (put writes its record with
// appendBoxRecordOf, from items).
type boxCopy struct {
	marks   jBox // without Entries
	entries [][]memEntry
	n       int // entries in all
}

// items are the mailbox's entries as its record holds them.
func (bc boxCopy) items() iter.Seq[jBoxItem] {
	return func(yield func(jBoxItem) bool) {
		for _, blk := range bc.entries {
			for _, e := range blk {
				if !yield(jBoxItem{Seq: e.seq, Msg: e.msg.ID, Delivered: e.delivered, Read: e.read}) {
					return
				}
			}
		}
	}
}

// record is the mailbox's record with its entries in one slice.
func (bc boxCopy) record() jBox {
	r := bc.marks
	r.Entries = slices.AppendSeq(make([]jBoxItem, 0, bc.n), bc.items())
	return r
}

// collect copies memory's state. Called with mu held (or before the store
// is shared, at open), so that no write is applied meanwhile.
func (j *JournalStore) collect() *snapshotState {
	st := &snapshotState{}
	m := j.mem
	m.mu.Lock()
	st.sessions = make([]SessionInfo, 0, len(m.sessions))
	for _, s := range m.sessions {
		st.sessions = append(st.sessions, *s)
	}
	st.memMsgs = m.order.freeze()
	for mm, by := range m.hidden {
		if st.hidden == nil {
			st.hidden = map[*memMsg][]string{}
		}
		st.hidden[mm] = slices.Sorted(maps.Keys(by))
	}
	st.memBoxes = make([]boxCopy, 0, len(m.mailboxes))
	for id, b := range m.mailboxes {
		st.memBoxes = append(st.memBoxes, boxCopy{
			marks:   jBox{ID: id, Last: b.last, Acked: b.acked, ReadThrough: b.readThrough, LastRead: nanos(b.lastRead)},
			entries: b.entries.freeze(),
			n:       b.entries.len(),
		})
	}
	m.mu.Unlock()
	slices.SortFunc(st.sessions, func(a, b SessionInfo) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(st.memBoxes, func(a, b boxCopy) int { return cmp.Compare(a.marks.ID, b.marks.ID) })
	clients := make([]string, 0, len(j.refs))
	for c := range j.refs {
		clients = append(clients, c)
	}
	slices.Sort(clients)
	for _, c := range clients {
		w := j.refs[c]
		for _, e := range w.order {
			if w.byRef[e.ref] != e {
				continue // a ref used again since: the newer send answers it
			}
			r := jRef{Client: c, Ref: e.ref, Digest: slices.Clone(e.digest[:]), ID: e.sent.ID, TS: nanos(e.sent.TS), To: e.sent.Recipients}
			for _, sl := range e.sent.Slots {
				r.Seqs = append(r.Seqs, sl.Seq)
			}
			st.refs = append(st.refs, r)
		}
	}
	holds, _ := m.Holds(context.Background(), keptReleases)
	st.holds.List = make([]jHold, 0, len(holds))
	for _, h := range holds {
		st.holds.List = append(st.holds.List, toJHold(h))
	}
	return st
}

// emit calls put with the records that rebuild st: sessions, messages,
// mailboxes (which name the messages), send refs, holds.
func (st *snapshotState) emit(put func(byte, any) error) error {
	for _, s := range st.sessions {
		if err := put(recTouch, toJTouch(s)); err != nil {
			return err
		}
	}
	for _, r := range st.msgs {
		if err := put(recMessage, r); err != nil {
			return err
		}
	}
	for _, blk := range st.memMsgs {
		for _, mm := range blk {
			if err := put(recMessage, jMessage{Msg: toJMsg(&mm.Message), Hidden: st.hidden[mm]}); err != nil {
				return err
			}
		}
	}
	for _, r := range st.boxes {
		if err := put(recBox, r); err != nil {
			return err
		}
	}
	for _, bc := range st.memBoxes {
		if err := put(recBox, bc); err != nil {
			return err
		}
	}
	for _, r := range st.refs {
		if err := put(recRef, r); err != nil {
			return err
		}
	}
	return put(recHolds, st.holds)
}

// compact rewrites the journal as a snapshot of what memory holds (see
// snapshotState), and goes on appending to the new file. Called at open,
// before there is a writer, with st collected; while relayd runs a
// compaction is written beside the journal instead (compactBeside).
func (j *JournalStore) compact(st *snapshotState) error {
	f, size, err := j.writeSnapshotFile(st)
	if err != nil {
		return err
	}
	j.f.Close()
	j.setFile(f, size)
	return nil
}

// setFile makes f, of size bytes, the journal the writer appends to.
func (j *JournalStore) setFile(f *os.File, size int64) {
	j.f = f
	j.syncFile.Store(f)
	j.size.Store(size)
	j.compacted = size
	j.log.Info("compacted the message journal", logKeyPath, j.path, "bytes", size)
}

// writeSnapshot writes st as the journal at j.path (ConvertToJournal).
func (j *JournalStore) writeSnapshot(st *snapshotState) error {
	f, _, err := j.writeSnapshotFile(st)
	if err != nil {
		return err
	}
	return f.Close()
}

// writeSnapshotFile writes st to a new file that replaces j.path once it is
// fsynced whole, so a crash leaves one or the other, and returns it open
// at its end, with its size.
func (j *JournalStore) writeSnapshotFile(st *snapshotState) (*os.File, int64, error) {
	f, size, err := j.writeSnapshotTemp(st)
	if err != nil {
		return nil, 0, err
	}
	if err := j.installSnapshot(f); err != nil {
		return nil, 0, err
	}
	return f, size, nil
}

// snapshotTemp is where a snapshot is written before it replaces the
// journal.
func (j *JournalStore) snapshotTemp() string { return j.path + ".compact" }

// writeSnapshotTemp writes st to snapshotTemp, fsynced, and returns it open
// at its end, with its size. It stops early, with an error, once
// j.stopCompaction is set (relayd is shutting down).
func (j *JournalStore) writeSnapshotTemp(st *snapshotState) (*os.File, int64, error) {
	tmp := j.snapshotTemp()
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, 0, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	var buf []byte
	put := func(kind byte, v any) error {
		if j.stopCompaction.Load() {
			return j.closedError()
		}
		switch r := v.(type) {
		case jMessage:
			buf = appendMessageRecord(buf[:0], &r)
		case jBox:
			buf = appendBoxRecord(buf[:0], &r)
		case boxCopy:
			buf = appendBoxRecordOf(buf[:0], &r.marks, r.items())
		default:
			if buf, err = appendRecord(buf[:0], kind, v); err != nil {
				return err
			}
		}
		_, err = w.Write(buf)
		return err
	}
	if err := st.emit(put); err != nil {
		return nil, 0, err
	}
	if err := w.Flush(); err != nil {
		return nil, 0, err
	}
	if err := f.Sync(); err != nil {
		return nil, 0, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, 0, err
	}
	ok = true
	return f, size, nil
}

// discardSnapshot closes and removes a snapshot written at snapshotTemp.
func (j *JournalStore) discardSnapshot(f *os.File) {
	f.Close()
	os.Remove(j.snapshotTemp())
}

// installSnapshot renames f, written whole and fsynced at snapshotTemp,
// over the journal, and fsyncs the directory. On failure it closes and
// removes f.
func (j *JournalStore) installSnapshot(f *os.File) error {
	if err := j.renameSnapshot(f); err != nil {
		return err
	}
	j.syncDir()
	return nil
}

// renameSnapshot is installSnapshot without the directory's fsync.
func (j *JournalStore) renameSnapshot(f *os.File) error {
	if err := os.Rename(j.snapshotTemp(), j.path); err != nil {
		j.discardSnapshot(f)
		return err
	}
	return nil
}

// syncDir fsyncs the journal's directory: a rename in it is durable once
// it returns.
func (j *JournalStore) syncDir() {
	if d, err := os.Open(filepath.Dir(j.path)); err == nil {
		d.Sync()
		d.Close()
	}
}

// hide marks message id as cleared from these clients' history.
func (m *Memory) hide(id string, clients []string) {
	if len(clients) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, mm := m.byID(id)
	if mm == nil {
		return
	}
	for _, c := range clients {
		m.hideFor(mm, c)
	}
}

// restoreBox rebuilds a mailbox from a snapshot record.
func (m *Memory) restoreBox(r jBox) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.mailboxes[r.ID]; ok {
		return fmt.Errorf("mailbox %s is in the snapshot twice", r.ID)
	}
	b := &mailbox{id: r.ID, last: r.Last, acked: r.Acked, readThrough: r.ReadThrough, lastRead: fromNanos(r.LastRead)}
	for _, e := range r.Entries {
		_, mm := m.byID(e.Msg)
		if mm == nil {
			return fmt.Errorf("mailbox %s holds message %s, which the snapshot does not", r.ID, e.Msg)
		}
		if n := b.entries.len(); n > 0 && e.Seq <= b.entries.last().seq || e.Seq > r.Last {
			return fmt.Errorf("mailbox %s: seq %d out of order", r.ID, e.Seq)
		}
		b.put(memEntry{seq: e.Seq, msg: mm, delivered: e.Delivered, read: e.Read})
	}
	m.mailboxes[r.ID] = b
	return nil
}
