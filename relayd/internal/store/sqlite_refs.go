package store

import (
	"context"
	"database/sql"
	"encoding/hex"
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
// the SQLite store keeps a send's ref in the message's own row (column
// sent_ref), written by the same INSERT as the message: either both are on
// disk or neither is. A client's window is its newest protocol.RefWindow
// messages with a ref, read through messages_by_sender on its first send
// after open. The committer checks a new send against it, which also
// settles a retry that races the original through two connections.
//
// The ref used to have a table of its own (schema steps 2 to 6): one more
// b-tree and one more statement per send, about a fifth of the relay's CPU
// on the send path. A ref now lives as long as its message (Prune dropped
// the refs of expired messages already; a message Clear deletes for good
// takes its ref with it).

// migrationRefsInMessages moves the refs table into the messages' rows
// (sent_ref, see sentRefPrefix for its form). A ref whose message is
// gone answers no retry: it is not kept.
const migrationRefsInMessages = `
ALTER TABLE messages ADD COLUMN sent_ref TEXT; -- JSON {ref, digest, to, seqs} of a send with a ref, NULL without one
UPDATE messages SET sent_ref = (
	SELECT json_object('ref', r.ref, 'digest', lower(hex(r.digest)), 'to', json(r.recipients), 'seqs', json(r.seqs))
	FROM refs r WHERE r.msg_id = messages.id AND r.client = messages.sender)
WHERE id IN (SELECT msg_id FROM refs);
DROP TABLE refs;
`

// refTrimEvery is how many sends of a client pass between two trims of its
// window in memory: it holds between RefWindow and RefWindow+refTrimEvery
// refs per client.
const refTrimEvery = 256

// sentRefPrefix is the start of a send's sent_ref, all but its seqs (which
// Submit assigns later): {"ref":…,"digest":"<hex>","to":[…],"seqs":[
// sentRefJSON closes it. Built on the sender's goroutine, not the
// committer's.
func sentRefPrefix(ref *SendRef, recipients []string) (string, error) {
	rj, err := json.Marshal(ref.Ref)
	if err != nil {
		return "", err
	}
	tj, err := json.Marshal(recipients)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.Grow(len(rj) + len(tj) + 2*len(ref.Digest) + 40)
	sb.WriteString(`{"ref":`)
	sb.Write(rj)
	sb.WriteString(`,"digest":"`)
	sb.WriteString(hex.EncodeToString(ref.Digest[:]))
	sb.WriteString(`","to":`)
	sb.Write(tj)
	sb.WriteString(`,"seqs":[`)
	return sb.String(), nil
}

func sentRefJSON(prefix string, slots []Slot) string {
	b := make([]byte, 0, len(prefix)+8*len(slots)+2)
	b = append(b, prefix...)
	for i, sl := range slots {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, sl.Seq, 10)
	}
	return string(append(b, "]}"...))
}

// sentRef is a decoded sent_ref.
type sentRef struct {
	Ref    string   `json:"ref"`
	Digest string   `json:"digest"`
	To     []string `json:"to"`
	Seqs   []uint64 `json:"seqs"`
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
	b.appended = b.appended[:0]
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
	// Newest first: a ref reused with other content is the newest send's.
	rows, err := q.QueryContext(ctx, `SELECT id, ts, sent_ref FROM messages
		WHERE sender = ? AND sent_ref IS NOT NULL ORDER BY rid DESC LIMIT ?`, client, protocol.RefWindow)
	if err != nil {
		return nil, fmt.Errorf("read the send refs of %s: %w", client, err)
	}
	defer rows.Close()
	w := &clientRefs{byRef: map[string]refRec{}}
	var i int64
	for rows.Next() {
		var id, js string
		var ts int64
		if err := rows.Scan(&id, &ts, &js); err != nil {
			return nil, fmt.Errorf("read the send refs of %s: %w", client, err)
		}
		i++
		var sr sentRef
		if err := json.Unmarshal([]byte(js), &sr); err != nil {
			return nil, fmt.Errorf("decode the send ref of message %s of %s: %w", id, client, err)
		}
		if _, ok := w.byRef[sr.Ref]; ok {
			continue
		}
		sent := &Sent{ID: id, TS: fromNanos(ts), Recipients: sr.To, Slots: slotsOf(sr.Seqs)}
		// n counts down from the newest; renumbered below.
		rec := refRec{n: -i, sent: sent}
		d, err := hex.DecodeString(sr.Digest)
		if err != nil || len(d) != len(rec.digest) {
			return nil, fmt.Errorf("decode the send ref of message %s of %s: bad digest %q", id, client, sr.Digest)
		}
		copy(rec.digest[:], d)
		w.byRef[sr.Ref] = rec
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the send refs of %s: %w", client, err)
	}
	for ref, rec := range w.byRef {
		rec.n += i + 1
		w.byRef[ref] = rec
	}
	w.n = i
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

// addRef records msg under ref in this batch, for the window once it
// commits (its row carries the ref itself). findRef ran first, so the
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
}

func slices2(s []Slot) []Slot { return append([]Slot(nil), s...) }

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
