package store

import (
	"context"
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

// Search on Memory scans every message, newest first: the memory store is
// for tests and small relays.
func (m *Memory) Search(_ context.Context, q SearchQuery) ([]Message, bool, error) {
	words := searchWords(q.Text)
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Message
	if len(words) == 0 {
		return out, false, nil
	}
	for i := len(m.order) - 1; i >= 0; i-- {
		msg := m.order[i]
		if q.Before != "" && msg.ID >= q.Before {
			continue
		}
		body := strings.ToLower(msg.Body)
		if !containsAll(body, words) {
			continue
		}
		if len(out) == limit {
			reverse(out)
			return out, true, nil
		}
		out = append(out, msg.Message)
	}
	reverse(out)
	return out, false, nil
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

func reverse(ms []Message) {
	for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
		ms[i], ms[j] = ms[j], ms[i]
	}
}
