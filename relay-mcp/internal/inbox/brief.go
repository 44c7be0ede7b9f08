package inbox

// Brief is what a scan of the whole inbox needs of each message: who sent
// it under which id, and whether it was read. Briefs is that scan without
// copying the messages: a full inbox holds DefaultLimit of them, and a
// List of all of them costs milliseconds (their bodies copied and
// collected) where the caller wants only the ids.
type Brief struct {
	ID   string
	From string
	Read bool
}

// Briefs returns a Brief of every message held, read or not, in the order
// they were received.
func (b *Inbox) Briefs() []Brief {
	b.Refresh()
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Brief, len(b.entries))
	for i, e := range b.entries {
		out[i] = Brief{ID: e.ID, From: e.From, Read: e.Read}
	}
	return out
}

// Changes returns a Brief of every message stored or marked read after
// since (0: all of them), and the point to ask from next time: what a
// watcher reacting to each change needs, without a pass over the whole
// inbox in its own code. A message can come back in a later answer (after
// another process compacted the log, everything does); the caller keeps
// what it has seen.
func (b *Inbox) Changes(since uint64) ([]Brief, uint64) {
	b.Refresh()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Brief
	for _, e := range b.entries {
		if e.rev > since {
			out = append(out, Brief{ID: e.ID, From: e.From, Read: e.Read})
		}
	}
	return out, b.rev
}
