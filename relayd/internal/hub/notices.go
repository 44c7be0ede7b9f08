package hub

import (
	"slices"
	"strings"
	"sync"

	"github.com/claude-relay/claude-relay/protocol"
)

// noticeBoard holds the standing notices (protocol.Notice) of each client
// id by subject, so that a client connecting later, or again, is told how
// things stand. In memory, like the state they describe (holds).
type noticeBoard struct {
	mu   sync.Mutex
	byID map[string]map[string]protocol.Notice
}

// notify records f for each of ids and pushes it to those online. A notice
// without text withdraws its subject: it is pushed (so a client online
// clears what it shows) and forgotten.
func (h *Hub) notify(f protocol.Notice, ids ...string) {
	nb := &h.notices
	subject := f.NoticeSubject()
	nb.mu.Lock()
	for _, id := range ids {
		if f.NoticeText() == "" {
			delete(nb.byID[id], subject)
			if len(nb.byID[id]) == 0 {
				delete(nb.byID, id)
			}
			continue
		}
		if nb.byID == nil {
			nb.byID = map[string]map[string]protocol.Notice{}
		}
		if nb.byID[id] == nil {
			nb.byID[id] = map[string]protocol.Notice{}
		}
		nb.byID[id][subject] = f
	}
	nb.mu.Unlock()
	h.mu.Lock()
	var online []*Conn
	for _, id := range ids {
		if c := h.conns[id]; c != nil {
			online = append(online, c)
		}
	}
	h.mu.Unlock()
	for _, c := range online {
		c.push(f)
	}
}

// pushNotices tells a client that just joined the notices standing for
// its id, by subject. One that notify also pushed in the meantime comes
// twice, which a client takes as the same notice.
func (h *Hub) pushNotices(c *Conn) {
	nb := &h.notices
	nb.mu.Lock()
	var fs []protocol.Notice
	for _, f := range nb.byID[c.id] {
		fs = append(fs, f)
	}
	nb.mu.Unlock()
	slices.SortFunc(fs, func(a, b protocol.Notice) int { return strings.Compare(a.NoticeSubject(), b.NoticeSubject()) })
	for _, f := range fs {
		c.push(f)
	}
}
