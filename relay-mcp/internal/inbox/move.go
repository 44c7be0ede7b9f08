package inbox

import (
	"fmt"
	"github.com/claude-relay/claude-relay/protocol"
	"os"
	"path/filepath"
)

// SwitchDir makes b the inbox kept in dir (another id's, after a rename):
// it closes the current log and loads dir's, creating it if needed. The old
// directory is left as it is, so a session that comes back under the old
// id finds its own inbox and resume point there. Carry unread mail over
// with TakeUnread.
func (b *Inbox) SwitchDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create inbox %s: %w", dir, err)
	}
	b.mu.Lock()
	if b.f != nil {
		if b.f.Sync() == nil {
			b.synced = b.written
		}
		b.f.Close()
		b.f = nil
	}
	b.closeLock()
	b.dir = dir
	b.logPath = filepath.Join(dir, "messages.jsonl")
	b.lockPath = filepath.Join(dir, "messages.lock")
	b.ident = nil
	b.reset()
	b.mu.Unlock()
	if err := b.Refresh(); err != nil {
		return err
	}
	b.mu.Lock()
	b.signal()
	b.mu.Unlock()
	return nil
}

// TakeUnread moves from's unread messages into b: they are added to b
// (without seq, so b's resume point stays its own mailbox's) and marked
// read in from. It returns how many b did not hold yet.
func (b *Inbox) TakeUnread(from *Inbox) (int, error) {
	es := from.List(Query{})
	if len(es) == 0 {
		return 0, nil
	}
	msgs := make([]Entry, 0, len(es))
	ids := make([]string, 0, len(es))
	for _, e := range es {
		e.Seq = 0
		msgs = append(msgs, e)
		ids = append(ids, e.ID)
	}
	added, err := b.addEntries(msgs)
	if err != nil {
		return 0, err
	}
	if err := b.Sync(); err != nil {
		return 0, err
	}
	return len(added), from.MarkRead(ids...)
}

func (b *Inbox) addEntries(es []Entry) ([]Entry, error) {
	ms := make([]protocol.Message, len(es))
	for i, e := range es {
		ms[i] = e.Message
	}
	return b.Add(ms...)
}

// SwitchDir makes o the outbox kept in dir, loading what waits there.
func (o *Outbox) SwitchDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create outbox dir: %w", err)
	}
	o.mu.Lock()
	o.path, o.lockPath = filepath.Join(dir, "outbox.json"), filepath.Join(dir, "outbox.lock")
	o.items = nil
	o.mu.Unlock()
	return o.update(func() error { return nil })
}
