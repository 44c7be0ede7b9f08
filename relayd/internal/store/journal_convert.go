package store

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

// Converted is what ConvertToJournal moved.
type Converted struct {
	Sessions, Messages, Mailboxes, Refs, Holds int
	Journal                                    string // the journal written
	Aside                                      string // where the SQLite files went
}

// ConvertToJournal turns the SQLite store in dir into a journal store: it
// reads everything relay.db holds — sessions, messages, every mailbox
// with its seqs, acks, delivery and read times, send refs, holds — writes
// it as a journal snapshot (relay.journal), and moves relay.db and its
// -wal and -shm files into a folder beside it, kept as they were. relayd
// must not be running (the data directory's lock says so).
//
// A crash midway leaves relay.db where it was: before the journal is
// renamed into place nothing changed; after, both files are there and
// relayd refuses to start until one goes (it names them).
func ConvertToJournal(ctx context.Context, dir string) (Converted, error) {
	var out Converted
	db := filepath.Join(dir, FileName)
	if _, err := os.Stat(db); err != nil {
		return out, fmt.Errorf("no SQLite store to convert in %s: %w", dir, err)
	}
	journal := filepath.Join(dir, JournalFile)
	if _, err := os.Stat(journal); err == nil {
		return out, fmt.Errorf("%s exists already: the data directory holds both stores — move the one you do not want out of %s first", journal, dir)
	}
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		return out, err
	}
	st, err := s.export(ctx)
	if err != nil {
		s.Close()
		return out, fmt.Errorf("read %s: %w", db, err)
	}
	out = Converted{Sessions: len(st.sessions), Messages: len(st.msgs), Mailboxes: len(st.boxes), Refs: len(st.refs), Holds: len(st.holds.List), Journal: journal}
	// Written while the SQLite store holds the directory's lock: no relayd
	// can start in between.
	j := &JournalStore{path: journal}
	if err := j.writeSnapshot(st); err != nil {
		s.Close()
		return out, fmt.Errorf("write %s: %w", journal, err)
	}
	if err := s.Close(); err != nil {
		return out, err
	}
	out.Aside = filepath.Join(dir, "sqlite-"+time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Mkdir(out.Aside, 0o700); err != nil {
		return out, fmt.Errorf("the journal is written; move %s aside by hand (%w)", db, err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(db+suffix, filepath.Join(out.Aside, FileName+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return out, fmt.Errorf("the journal is written; move %s aside by hand (%w)", db+suffix, err)
		}
	}
	return out, nil
}

// export reads the whole store as a journal snapshot.
func (s *SQLite) export(ctx context.Context) (*snapshotState, error) {
	st := &snapshotState{}
	rows, err := s.r.QueryContext(ctx, `SELECT id, host, pid, cwd, agent, label, first_seen, last_seen FROM sessions ORDER BY id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var si jTouch
		if err := rows.Scan(&si.ID, &si.Host, &si.PID, &si.Cwd, &si.Agent, &si.Label, &si.FirstSeen, &si.LastSeen); err != nil {
			rows.Close()
			return nil, err
		}
		st.sessions = append(st.sessions, si.session())
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}

	// Messages in id order, as Memory keeps them; rid → id for the mailboxes.
	ids := map[int64]string{}
	lastRef := map[string][]jRef{} // per sender, newest first, up to RefWindow
	rows, err = s.r.QueryContext(ctx, `SELECT rid, id, sender, recipients, body, ts, reply_to, thread, sender_cleared, sent_ref
		FROM messages ORDER BY rid DESC`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var rid, ts int64
		var cleared bool
		var to string
		var sentRefJS *string
		var m jMsg
		if err := rows.Scan(&rid, &m.ID, &m.From, &to, &m.Body, &ts, &m.ReplyTo, &m.Thread, &cleared, &sentRefJS); err != nil {
			rows.Close()
			return nil, err
		}
		m.TS = ts
		if m.To, err = decodeRecipients(to); err != nil {
			rows.Close()
			return nil, fmt.Errorf("message %s: %w", m.ID, err)
		}
		ids[rid] = m.ID
		r := jMessage{Msg: m}
		if cleared {
			r.Hidden = []string{m.From}
		}
		st.msgs = append(st.msgs, r)
		if sentRefJS != nil && len(lastRef[m.From]) < protocol.RefWindow {
			var sr sentRef
			if err := json.Unmarshal([]byte(*sentRefJS), &sr); err != nil {
				rows.Close()
				return nil, fmt.Errorf("the send ref of message %s: %w", m.ID, err)
			}
			dg, err := hex.DecodeString(sr.Digest)
			if err != nil || len(dg) != 32 {
				rows.Close()
				return nil, fmt.Errorf("the send ref of message %s: bad digest %q", m.ID, sr.Digest)
			}
			if !slices.ContainsFunc(lastRef[m.From], func(x jRef) bool { return x.Ref == sr.Ref }) {
				lastRef[m.From] = append(lastRef[m.From], jRef{Client: m.From, Ref: sr.Ref, Digest: dg, ID: m.ID, TS: ts, To: sr.To, Seqs: sr.Seqs})
			}
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	slices.SortFunc(st.msgs, func(a, b jMessage) int { return cmp.Compare(a.Msg.ID, b.Msg.ID) })
	senders := make([]string, 0, len(lastRef))
	for c := range lastRef {
		senders = append(senders, c)
	}
	slices.Sort(senders)
	for _, c := range senders {
		refs := lastRef[c]
		slices.Reverse(refs) // oldest first, as the window holds them
		st.refs = append(st.refs, refs...)
	}

	boxes := map[string]*jBox{}
	box := func(id string) *jBox {
		b := boxes[id]
		if b == nil {
			b = &jBox{ID: id}
			boxes[id] = b
		}
		return b
	}
	rows, err = s.r.QueryContext(ctx, `SELECT recipient, last_seq, acked FROM boxes`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var last, acked int64
		if err := rows.Scan(&id, &last, &acked); err != nil {
			rows.Close()
			return nil, err
		}
		b := box(id)
		b.Last, b.Acked = uint64(last), uint64(acked)
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	rows, err = s.r.QueryContext(ctx, `SELECT recipient, seq, msg, delivered_at, read_at FROM mailbox ORDER BY recipient, seq`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var seq, rid, delivered, read int64
		if err := rows.Scan(&id, &seq, &rid, &delivered, &read); err != nil {
			rows.Close()
			return nil, err
		}
		msgID, ok := ids[rid]
		if !ok {
			rows.Close()
			return nil, fmt.Errorf("mailbox %s seq %d points at message %d, which is gone", id, seq, rid)
		}
		b := box(id)
		b.Entries = append(b.Entries, jBoxItem{Seq: uint64(seq), Msg: msgID, Delivered: delivered, Read: read})
		b.Last = max(b.Last, uint64(seq)) // the real last seq is the larger (see the boxes table)
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	rows, err = s.r.QueryContext(ctx, `SELECT recipient, last_read FROM reads`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			rows.Close()
			return nil, err
		}
		if b := boxes[id]; b != nil {
			b.LastRead = at
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	for _, b := range boxes {
		st.boxes = append(st.boxes, *b)
	}
	slices.SortFunc(st.boxes, func(a, b jBox) int { return cmp.Compare(a.ID, b.ID) })

	holds, err := s.Holds(ctx, keptReleases)
	if err != nil {
		return nil, err
	}
	st.holds.List = make([]jHold, 0, len(holds))
	for _, h := range holds {
		st.holds.List = append(st.holds.List, toJHold(h))
	}
	return st, nil
}

type rowsCloser interface {
	Err() error
	Close() error
}

func closeRows(rows rowsCloser) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}
