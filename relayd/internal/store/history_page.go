package store

import (
	"slices"

	"github.com/claude-relay/claude-relay/protocol"
)

// historyPage gathers a page of history: up to limit messages and one more
// (which tells that more lie beyond), cut short where the bodies would pass
// protocol.MaxHistoryBytes — never before its first message.
type historyPage struct {
	msgs  []Message
	limit int
	size  int
	cut   bool
}

// add takes m, or reports that the page is full without it.
func (p *historyPage) add(m Message) bool {
	if len(p.msgs) < p.limit && len(p.msgs) > 0 && p.size+len(m.Body) > protocol.MaxHistoryBytes {
		p.cut = true
		return false
	}
	p.size += len(m.Body)
	p.msgs = append(p.msgs, m)
	return true
}

// full reports whether the page holds limit messages and one more.
func (p *historyPage) full() bool { return len(p.msgs) > p.limit }

// result is the page in time order (a backward walk gathered it newest
// first) and whether more lies beyond it.
func (p *historyPage) result(forward bool) ([]Message, bool) {
	more := p.cut || len(p.msgs) > p.limit
	page := p.msgs[:min(len(p.msgs), p.limit)]
	if !forward {
		slices.Reverse(page)
	}
	return page, more
}
