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
