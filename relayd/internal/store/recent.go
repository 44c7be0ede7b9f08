package store

import (
	"encoding/json"
	"strings"
)

// The recent cache. A connected recipient's writer is woken by every append
// to its mailbox and reads what was just committed with Pending; without a
// cache that is a query (and a decode of every row) for data the store had
// in hand a moment before. So each commit leaves the deliveries it made in
// a short run per mailbox, and Pending answers from it when the run covers
// what is asked. The file stays the truth: a run is dropped whenever it
// could disagree with it (Clear, Prune), and Pending falls back to a query
// for anything older than the run (a resume after a long absence).

const (
	// recentPerBox bounds one mailbox's run: a writer that is further
	// behind than this reads from the file. Several pipelining senders to
	// one recipient keep its writer a few thousand behind: at 1024 it read
	// most of a burst back from the file (a query and a decode per row),
	// and 4 senders → 1 receiver ran 20% slower on the older protocol
	// (docs/benchmarks.md). recentBudget still bounds the memory.
	recentPerBox = 8192
	// recentBudget bounds the bodies held by all runs together, so that
	// many idle-but-connected recipients with unread mail cannot make the
	// cache grow with the traffic.
	recentBudget = 32 << 20
)

// recentBox is a run of consecutive seqs, the newest of a mailbox.
type recentBox struct {
	ds    []Delivery // ascending, consecutive seqs
	bytes int
}

// publishEarly adds a submitted append's deliveries to the runs, before
// its commit, for provisional readers. s.mu is held.
func (s *SQLite) publishEarly(a *pendingAppend) {
	s.addRecent(a.msg, a.recipients, a.slots)
}

// addRecent adds one message's deliveries to the runs. s.mu is held.
func (s *SQLite) addRecent(msg *Message, recipients []string, slots []Slot) {
	size := len(msg.Body) + 128
	for i, id := range recipients {
		seq := slots[i].Seq
		if seq == 0 {
			continue
		}
		r := s.recent[id]
		if r == nil {
			r = &recentBox{}
			s.recent[id] = r
		}
		if n := len(r.ds); n > 0 && r.ds[n-1].Seq+1 != seq {
			s.dropRecent(id) // a gap: the run would lie about what follows
			r = &recentBox{}
			s.recent[id] = r
		}
		if s.recentBytes+size > recentBudget {
			s.dropRecent(id)
			continue
		}
		if len(r.ds) == recentPerBox {
			// Keep the newer half: the writer is at the end.
			half := recentPerBox / 2
			for _, d := range r.ds[:half] {
				r.bytes -= len(d.Msg.Body) + 128
				s.recentBytes -= len(d.Msg.Body) + 128
			}
			r.ds = append(r.ds[:0], r.ds[half:]...)
		}
		r.ds = append(r.ds, Delivery{Seq: seq, Msg: *msg})
		r.bytes += size
		s.recentBytes += size
	}
}

// learnRecent adds a committed batch's deliveries that Submit did not
// publish early to the runs, and trims what its acks made old. s.mu is
// held.
func (s *SQLite) learnRecent(b *batch) {
	if b.forget {
		clear(s.recent)
		s.recentBytes = 0
		return
	}
	for _, a := range b.appended {
		if !a.early {
			s.addRecent(a.msg, a.recipients, a.slots)
		}
	}
	// Acked deliveries will never be asked for again.
	for id, bx := range b.boxes {
		r := s.recent[id]
		if r == nil || len(r.ds) == 0 || r.ds[0].Seq > bx.acked {
			continue
		}
		i := 0
		for i < len(r.ds) && r.ds[i].Seq <= bx.acked {
			r.bytes -= len(r.ds[i].Msg.Body) + 128
			s.recentBytes -= len(r.ds[i].Msg.Body) + 128
			i++
		}
		if i == len(r.ds) {
			s.dropRecent(id)
			continue
		}
		r.ds = append(r.ds[:0], r.ds[i:]...)
	}
}

func (s *SQLite) dropRecent(id string) {
	if r := s.recent[id]; r != nil {
		s.recentBytes -= r.bytes
		delete(s.recent, id)
	}
}

// pendingFromRecent answers Pending from the cache; ok is false when the
// run does not cover from onwards. Committed readers stop at the box's
// committed last seq; provisional readers go on to the last one assigned,
// the deliveries beyond the committed one marked Provisional.
func (s *SQLite) pendingFromRecent(id string, after uint64, limit int, provisional bool) (out []Delivery, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	bx := s.boxes[id]
	top := bx.last
	if provisional {
		top = max(top, s.assigned[id])
	}
	from := max(after, bx.acked) + 1
	if from > top {
		return nil, true // nothing beyond it
	}
	r := s.recent[id]
	if r == nil || len(r.ds) == 0 || r.ds[0].Seq > from || r.ds[len(r.ds)-1].Seq < top {
		return nil, false
	}
	ds := r.ds[from-r.ds[0].Seq:]
	if n := int(top - from + 1); len(ds) > n {
		ds = ds[:n]
	}
	if limit > 0 && len(ds) > limit {
		ds = ds[:limit]
	}
	// A copy: the run changes under the next commit.
	out = append([]Delivery(nil), ds...)
	for i := range out {
		out[i].Provisional = out[i].Seq > bx.last
	}
	return out, true
}

// decodeRecipients decodes a recipients column. Ids are plain text in
// practice, so the common case is split by hand; anything with an escape
// goes through encoding/json.
func decodeRecipients(s string) ([]string, error) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' || strings.IndexByte(s, '\\') >= 0 {
		var out []string
		err := json.Unmarshal([]byte(s), &out)
		return out, err
	}
	inner := s[1 : len(s)-1]
	if inner == "" {
		return []string{}, nil
	}
	n := strings.Count(inner, `","`) + 1
	out := make([]string, 0, n)
	for inner != "" {
		if len(inner) < 2 || inner[0] != '"' {
			break
		}
		end := strings.IndexByte(inner[1:], '"')
		if end < 0 {
			break
		}
		out = append(out, inner[1:1+end])
		inner = inner[2+end:]
		if inner == "" {
			return out, nil
		}
		if inner[0] != ',' {
			break
		}
		inner = inner[1:]
	}
	var slow []string
	err := json.Unmarshal([]byte(s), &slow)
	return slow, err
}
