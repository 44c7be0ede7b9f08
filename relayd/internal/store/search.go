package store

import (
	"cmp"
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

// searchChunk is how many messages Memory.Search looks at per hold of the
// store's lock: the journal store, relayd's default, holds its messages in
// a Memory, and its senders wait for that lock while a search holds it.
// 4096 short bodies take well under a millisecond.
const searchChunk = 4096

// Search on Memory scans the messages, newest first, a chunk at a time so
// that sends go on meanwhile.
func (m *Memory) Search(_ context.Context, q SearchQuery) ([]Message, bool, error) {
	words := searchWords(q.Text)
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []Message
	if len(words) == 0 {
		return out, false, nil
	}
	before := q.Before
	for {
		more, next := m.searchChunk(words, before, limit, &out)
		if more {
			reverse(out)
			return out, true, nil
		}
		if next == "" {
			reverse(out)
			return out, false, nil
		}
		before = next
	}
}

// searchChunk appends to out, newest first, the matches among up to
// searchChunk messages older than before (all when ""). It reports whether
// a match beyond limit exists, and the oldest id it looked at when older
// messages remain to be looked at ("" when none do).
func (m *Memory) searchChunk(words []string, before string, limit int, out *[]Message) (more bool, next string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := len(m.order)
	if before != "" {
		i, _ = slices.BinarySearchFunc(m.order, before, func(e *memMsg, id string) int { return cmp.Compare(e.ID, id) })
	}
	for n := 0; n < searchChunk; n++ {
		if i--; i < 0 {
			return false, ""
		}
		msg := m.order[i]
		if !containsAll(strings.ToLower(msg.Body), words) {
			continue
		}
		if len(*out) == limit {
			return true, ""
		}
		*out = append(*out, msg.Message)
	}
	if i == 0 {
		return false, ""
	}
	return false, m.order[i].ID
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
