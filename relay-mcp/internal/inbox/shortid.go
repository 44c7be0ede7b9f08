package inbox

import (
	"iter"
	"slices"
	"strings"
)

// ShortLen is the length of a message id as agents are shown it: its last
// 8 characters (random in the relay's time-ordered ids), so that a header
// does not spend ~25 tokens on 36 characters whose beginnings are all
// alike. Longer where two ids share them.
const ShortLen = 8

// Shortener returns the short form of an id among ids: the shortest tail
// of at least ShortLen characters that no other of ids ends with (the
// whole id when it is that short already).
//
// An id not among ids is returned whole: only ids the reader holds (and
// can hand back) are shortened, such as a reply_to naming a message the
// reader sent.
func Shortener(ids []string) func(string) string {
	held := make(map[string]bool, len(ids))
	for _, id := range ids {
		held[id] = true
	}
	return func(id string) string {
		if !held[id] {
			return id
		}
		return shortest(id, slices.Values(ids))
	}
}

// shortest is the shortest tail of id, ShortLen characters at least, that
// none of others but id itself ends with; id whole if there is none.
func shortest(id string, others iter.Seq[string]) string {
	for n := ShortLen; n < len(id); n++ {
		tail := id[len(id)-n:]
		if strings.HasPrefix(tail, "-") {
			continue
		}
		unique := true
		for o := range others {
			if o != id && strings.HasSuffix(o, tail) {
				unique = false
				break
			}
		}
		if unique {
			return tail
		}
	}
	return id
}

// Shortener is the package's Shortener over the ids this inbox holds,
// looked at under its lock at each call instead of copied: relay_receive
// shows a few messages of an inbox that holds up to DefaultLimit, and the
// copy and its map cost 0.7 ms a call when it was full.
func (b *Inbox) Shortener() func(string) string {
	b.Refresh()
	return func(id string) string {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.byID[id] == nil {
			return id
		}
		return shortest(id, func(yield func(string) bool) {
			for _, e := range b.entries {
				if !yield(e.ID) {
					return
				}
			}
		})
	}
}
