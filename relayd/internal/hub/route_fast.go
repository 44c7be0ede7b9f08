package hub

import (
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// Most sends name one or a few recipients: routing looks them up by
// scanning short slices instead of building a map for every message. A
// long list (a broadcast to everyone online, up to protocol.MaxRecipients
// ids) still gets a map, so the cost stays linear.
const scanLimit = 8

// idSet is the set of ids routing has seen, a map only for long lists.
type idSet map[string]bool

func newIDSet(n int) idSet {
	if n <= scanLimit {
		return nil
	}
	return make(idSet, n)
}

// has reports whether id was added: for a short list, whether outcomes,
// which holds every id added, has it.
func (s idSet) has(outcomes []protocol.Outcome, id string) bool {
	if s != nil {
		return s[id]
	}
	for _, o := range outcomes {
		if o.ID == id {
			return true
		}
	}
	return false
}

func (s idSet) add(id string) {
	if s != nil {
		s[id] = true
	}
}

// slotLookup returns what slot an id got, targets[i] having got slots[i];
// an id not among targets has the zero Slot.
func slotLookup(targets []string, slots []store.Slot) func(id string) store.Slot {
	if len(targets) > scanLimit {
		bySlot := make(map[string]store.Slot, len(targets))
		for i, id := range targets {
			bySlot[id] = slots[i]
		}
		return func(id string) store.Slot { return bySlot[id] }
	}
	return func(id string) store.Slot {
		for i, t := range targets {
			if t == id {
				return slots[i]
			}
		}
		return store.Slot{}
	}
}
