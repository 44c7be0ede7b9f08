package inbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/claude-relay/claude-relay/internal/atomicfile"
)

// Durability: the log is fsynced in groups, after the fact (Sync), and
// rewritten as a snapshot when it grows (compact).

// Sync makes everything written before it durable. The link acks messages
// to the relay only after Sync (the relay keeps what is not acked and sends
// it again, so a message is never only in an unsynced log).
//
// It is a group commit: one fsync covers every write made before it began,
// and a call made while one runs waits for it and shares the next. The
// disk flush runs outside the inbox's lock, so the tools (relay_receive
// listing and marking mail) and the link storing the next messages never
// wait for it.
func (b *Inbox) Sync() error {
	b.mu.Lock()
	want := b.written
	b.mu.Unlock()
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	b.mu.Lock()
	f, gen := b.f, b.written
	if b.synced >= want || f == nil {
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	err := b.fsync(f)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil && b.synced >= gen {
		err = nil // f was compacted or closed meanwhile, and synced then
	}
	if err == nil {
		b.synced = max(b.synced, gen)
	}
	return err
}

// compact rewrites the log as a snapshot of the state. Called under locked.
func (b *Inbox) compact() error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range b.entries {
		m := e.Message
		enc.Encode(&record{Msg: &m, At: e.ReceivedAt, WasRead: e.Read})
	}
	enc.Encode(&record{Cursor: b.cursor, ResetCursor: b.cursor == 0})
	if err := atomicfile.Write(b.logPath, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("compact inbox: %w", err)
	}
	syncDir(b.dir) // the rename too: the snapshot holds writes already acked
	if err := b.reopen(); err != nil {
		return err
	}
	b.off = b.ident.Size()
	b.torn = 0
	b.lines = len(b.entries) + 1
	b.synced = b.written // the snapshot was synced with everything in it
	return nil
}

// syncDir makes a rename in dir durable where the system allows it (not
// on Windows, where a directory cannot be opened for it; its renames are
// journaled by NTFS).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
