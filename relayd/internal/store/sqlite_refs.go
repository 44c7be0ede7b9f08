package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/claude-relay/claude-relay/protocol"
)

// The durable ref window. The hub remembers each client's recent send refs
// in memory, which a restart forgets: a client that resends, after the
// restart, a message whose accepted it never saw would get it stored twice
// under two ids, and deduplication by id downstream cannot catch that. So
// the SQLite store keeps each client's newest protocol.RefWindow refs in
// the refs table, written in the same transaction as the message itself:
// either both are on disk or neither is. The committer checks a new send
// against them, which also settles a retry that races the original through
// two connections.

// refTrimEvery is how many sends of a client pass between two trims of its
// rows: the table holds between RefWindow and RefWindow+refTrimEvery refs
// per client, and a trim costs one DELETE per refTrimEvery sends.
const refTrimEvery = 256

const refColumns = 8 // client, ref, n, digest, msg_id, ts, recipients, seqs

func qPutRefs(n int) string {
	return "INSERT INTO refs(client, ref, n, digest, msg_id, ts, recipients, seqs) VALUES " +
		strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?), ", n-1) + "(?, ?, ?, ?, ?, ?, ?, ?)" +
		` ON CONFLICT(client, ref) DO UPDATE SET n = excluded.n, digest = excluded.digest, msg_id = excluded.msg_id,
			ts = excluded.ts, recipients = excluded.recipients, seqs = excluded.seqs`
}

// clientRefs is one client's window as committed.
type clientRefs struct {
	n     int64 // the newest ref's n
	byRef map[string]refRec
}

type refRec struct {
	n      int64
	digest [32]byte
	sent   *Sent
}

type refKey struct{ client, ref string }

type refTrim struct {
	client string
	upto   int64 // rows with n <= upto go
}

// appended is one stored message, for the recent cache.
type appended struct {
	msg        *Message
	recipients []string
	slots      []Slot
	early      bool // already in the recent cache (Submit put it there)
}

func (b *batch) resetLearned() {
	if b.refAdds == nil {
		b.refAdds, b.refN = map[refKey]refRec{}, map[string]int64{}
	}
	clear(b.refAdds)
	clear(b.refN)
	clear(b.appended) // drop the pointers: the batch is reused
	b.appended, b.refRows, b.refTrims = b.appended[:0], b.refRows[:0], b.refTrims[:0]
	b.forget, b.resetRefs = false, false
}

// window returns client's committed window, reading it from the file the
// first time.
func (b *batch) window(client string) (*clientRefs, error) {
	b.s.refsMu.Lock()
	defer b.s.refsMu.Unlock()
	if w := b.s.refs[client]; w != nil {
		return w, nil
	}
	w, err := loadRefs(b.ctx, b.tx, client)
	if err != nil {
		return nil, err
	}
	b.s.refs[client] = w
	return w, nil
}

// sentBefore looks a send up in its sender's committed window, reading the
// window from the file the first time (on the caller's goroutine, so the
// committer does not wait for it). A send that is still on its way to the
// committer is not found: the committer checks again.
func (s *SQLite) sentBefore(client string, ref *SendRef) (*Sent, error) {
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	w := s.refs[client]
	if w == nil {
		var err error
		if w, err = loadRefs(context.Background(), s.r, client); err != nil {
			return nil, err
		}
		s.refs[client] = w
	}
	if rec, ok := w.byRef[ref.Ref]; ok && rec.digest == ref.Digest {
		return rec.sent, nil
	}
	return nil, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func loadRefs(ctx context.Context, q querier, client string) (*clientRefs, error) {
	rows, err := q.QueryContext(ctx, "SELECT ref, n, digest, msg_id, ts, recipients, seqs FROM refs WHERE client = ?", client)
	if err != nil {
		return nil, fmt.Errorf("read the send refs of %s: %w", client, err)
	}
	defer rows.Close()
	w := &clientRefs{byRef: map[string]refRec{}}
	for rows.Next() {
		var ref, id, recipients, seqs string
		var n, ts int64
		var digest []byte
		if err := rows.Scan(&ref, &n, &digest, &id, &ts, &recipients, &seqs); err != nil {
			return nil, fmt.Errorf("read the send refs of %s: %w", client, err)
		}
		sent := &Sent{ID: id, TS: fromNanos(ts)}
		var ss []uint64
		if err := json.Unmarshal([]byte(recipients), &sent.Recipients); err != nil {
			return nil, fmt.Errorf("decode send ref %s of %s: %w", ref, client, err)
		}
		if err := json.Unmarshal([]byte(seqs), &ss); err != nil {
			return nil, fmt.Errorf("decode send ref %s of %s: %w", ref, client, err)
		}
		for _, seq := range ss {
			sent.Slots = append(sent.Slots, Slot{Seq: seq, Full: seq == 0})
		}
		rec := refRec{n: n, sent: sent}
		copy(rec.digest[:], digest)
		w.byRef[ref] = rec
		w.n = max(w.n, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the send refs of %s: %w", client, err)
	}
	return w, nil
}

// findRef returns the first send with this ref and content, if the window
// (or this batch) holds it.
func (b *batch) findRef(client string, ref *SendRef) (*Sent, error) {
	if rec, ok := b.refAdds[refKey{client, ref.Ref}]; ok {
		if rec.digest == ref.Digest {
			return rec.sent, nil
		}
		return nil, nil
	}
	w, err := b.window(client)
	if err != nil {
		return nil, err
	}
	if rec, ok := w.byRef[ref.Ref]; ok && rec.digest == ref.Digest {
		return rec.sent, nil
	}
	return nil, nil
}

// addRef queues the row recording msg under ref. findRef ran first, so the
// client's window is loaded.
func (b *batch) addRef(msg *Message, ref *SendRef, recipients []string, slots []Slot) {
	n := b.refN[msg.From]
	if n == 0 {
		b.s.refsMu.Lock()
		n = b.s.refs[msg.From].n
		b.s.refsMu.Unlock()
	}
	n++
	b.refN[msg.From] = n
	sent := &Sent{ID: msg.ID, TS: msg.TS, Recipients: recipients, Slots: slices2(slots)}
	b.refAdds[refKey{msg.From, ref.Ref}] = refRec{n: n, digest: ref.Digest, sent: sent}
	rj, _ := json.Marshal(recipients)
	var sj strings.Builder
	sj.WriteByte('[')
	for i, sl := range slots {
		if i > 0 {
			sj.WriteByte(',')
		}
		sj.WriteString(strconv.FormatUint(sl.Seq, 10))
	}
	sj.WriteByte(']')
	b.refRows = append(b.refRows, msg.From, ref.Ref, n, ref.Digest[:], msg.ID, nanos(msg.TS), string(rj), sj.String())
	if n%refTrimEvery == 0 && n > protocol.RefWindow {
		b.refTrims = append(b.refTrims, refTrim{msg.From, n - protocol.RefWindow})
	}
}

func slices2(s []Slot) []Slot { return append([]Slot(nil), s...) }

// writeRefs inserts the queued ref rows and trims the windows that grew.
func (b *batch) writeRefs() error {
	// A ref reused twice in one statement would hit its own row; rows are
	// few per batch and such reuse is rare, so split only when needed.
	if err := b.insertChunks(b.refRows, refColumns, qPutRefs); err != nil {
		return fmt.Errorf("record %d send refs: %w", len(b.refRows)/refColumns, err)
	}
	b.refRows = b.refRows[:0]
	for _, t := range b.refTrims {
		if _, err := b.tx.ExecContext(b.ctx, "DELETE FROM refs WHERE client = ? AND n <= ?", t.client, t.upto); err != nil {
			return fmt.Errorf("trim the send refs of %s: %w", t.client, err)
		}
	}
	b.refTrims = b.refTrims[:0]
	return nil
}

// learnRefs moves a committed batch's refs into the windows. Runs on the
// committer.
func (s *SQLite) learnRefs(b *batch) {
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	if b.resetRefs {
		clear(s.refs)
		return
	}
	for k, rec := range b.refAdds {
		w := s.refs[k.client]
		if w == nil {
			continue // cannot happen: findRef loaded it
		}
		w.byRef[k.ref] = rec
		w.n = max(w.n, rec.n)
	}
	for client := range b.refN {
		w := s.refs[client]
		if w == nil || len(w.byRef) <= protocol.RefWindow+refTrimEvery {
			continue
		}
		for ref, rec := range w.byRef {
			if rec.n <= w.n-protocol.RefWindow {
				delete(w.byRef, ref)
			}
		}
	}
}
