package store

import (
	"context"
	"slices"
	"strings"
	"unicode"
)

// Searcher searches every message body (the console's search box): the
// SQLite store through a full-text index (FTS5), Memory by a scan. Part of
// Store.
type Searcher interface {
	// Search returns the newest q.Limit messages whose bodies hold every
	// word of q.Text, oldest first, and whether older matches exist (page
	// back with Before = the first id).
	Search(ctx context.Context, q SearchQuery) ([]Message, bool, error)
}

// SearchQuery selects messages by the words of their bodies.
type SearchQuery struct {
	// Text is what the operator typed. Its words (letters and digits) must
	// all appear: on the SQLite store as words or word prefixes, any case
	// and accent ("migrat" finds "Migration"); on Memory as substrings,
	// any case. Punctuation only separates words, so no input is a syntax
	// error.
	Text   string
	Before string // message id: only older messages
	Limit  int    // defaults to 100
}

// searchWords splits what an operator typed into the words to look for,
// lower-cased, at most 16 of them.
func searchWords(text string) []string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) > 16 {
		words = words[:16]
	}
	return words
}

// Search on Memory scans the messages, newest first (scan).
func (m *Memory) Search(_ context.Context, q SearchQuery) ([]Message, bool, error) {
	words := searchWords(q.Text)
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	if len(words) == 0 {
		return nil, false, nil
	}
	out, more := m.newest(q.Before, limit, func(mm *memMsg) bool { return containsAll(strings.ToLower(mm.Body), words) })
	return out, more, nil
}

// newest returns the newest limit messages older than before (all when
// "") that keep takes, oldest first, and whether more lie beyond them.
func (m *Memory) newest(before string, limit int, keep func(*memMsg) bool) ([]Message, bool) {
	var page []Message
	more := false
	m.scan(before, false, func(mm *memMsg) bool {
		if !keep(mm) {
			return true
		}
		if len(page) == limit {
			more = true
			return false
		}
		page = append(page, mm.Message)
		return true
	})
	slices.Reverse(page)
	return page, more
}

// scanChunk is how many messages a scan of Memory (History, Timeline,
// Search) looks at per hold of the store's lock: the journal store,
// relayd's default, holds its messages in a Memory, and its senders wait
// for that lock while a scan holds it. 4096 short bodies take well under a
// millisecond.
const scanChunk = 4096

// scan calls visit, with the store's lock held, for the messages older
// than the cursor id (all when ""), newest first; with forward for those
// newer than it, oldest first. It stops when visit returns false. The
// lock is let go every scanChunk messages, so sends go on meanwhile: a
// message stored or dropped during a scan may be visited or not.
func (m *Memory) scan(cursor string, forward bool, visit func(*memMsg) bool) {
	for {
		next, more := m.scanChunk(cursor, forward, visit)
		if !more {
			return
		}
		cursor = next
	}
}

// scanChunk is one hold of the lock of scan: it returns the id of the last
// message visited when more may be left.
func (m *Memory) scanChunk(cursor string, forward bool, visit func(*memMsg) bool) (next string, more bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, step := m.order.len()-1, -1
	if forward {
		i, step = 0, 1
	}
	if cursor != "" {
		at, found := m.orderIndex(cursor)
		i = at - 1
		if forward {
			i = at
			if found {
				i++
			}
		}
	}
	for range scanChunk {
		if i < 0 || i >= m.order.len() {
			return "", false
		}
		if !visit(m.order.get(i)) {
			return "", false
		}
		i += step
	}
	return m.order.get(i - step).ID, true
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
