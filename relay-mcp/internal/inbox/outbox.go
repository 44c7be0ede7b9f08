package inbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/internal/atomicfile"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/filelock"
)

// DefaultOutboxLimit bounds the messages queued while the relay is offline.
const DefaultOutboxLimit = 500

// ErrOutboxFull is returned by Outbox.Push when the bound is reached.
var ErrOutboxFull = errors.New("outbox full")

// NewRef returns a fresh send ref: 96 random bits, so refs are unique across
// reconnects, restarts and processes sharing an id without any counter to
// persist. A ref goes with its message into the outbox and every resend uses
// it: the relay answers a resend whose ref and content it has seen with the
// original accepted, and does not deliver it twice.
func NewRef() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Pending is a send waiting for the relay. Send.Ref is set and never changes.
type Pending struct {
	Send     protocol.Send `json:"send"`
	QueuedAt time.Time     `json:"queued_at"`
}

// Outbox holds sends made while the relay was unreachable, persisted in
// outbox.json beside the inbox and flushed in order by the link.
type Outbox struct {
	path, lockPath string
	limit          int

	mu    sync.Mutex
	items []Pending
}

// OpenOutbox loads the outbox in dir.
func OpenOutbox(dir string, limit int) (*Outbox, error) {
	if limit <= 0 {
		limit = DefaultOutboxLimit
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create outbox dir: %w", err)
	}
	o := &Outbox{path: filepath.Join(dir, "outbox.json"), lockPath: filepath.Join(dir, "outbox.lock"), limit: limit}
	err := o.update(func() error { return nil })
	return o, err
}

func (o *Outbox) load() error {
	data, err := os.ReadFile(o.path)
	if errors.Is(err, os.ErrNotExist) {
		o.items = nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	var items []Pending
	if err := json.Unmarshal(data, &items); err != nil {
		// Keep the damaged file for a person to look at; start empty.
		os.Rename(o.path, o.path+".corrupt-"+time.Now().UTC().Format("20060102T150405"))
		o.items = nil
		return nil
	}
	o.items = items
	return nil
}

// update runs fn on the freshly loaded items and writes them back atomically.
func (o *Outbox) update(fn func() error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	l, err := filelock.Acquire(o.lockPath)
	if err != nil {
		return err
	}
	defer l.Release()
	if err := o.load(); err != nil {
		return err
	}
	before := len(o.items)
	if err := fn(); err != nil {
		return err
	}
	if len(o.items) == 0 && before == 0 {
		return nil
	}
	return writeAtomic(o.path, o.items)
}

// Push appends a send and returns its ref: s.Ref, or a new one from NewRef
// when it is empty. The ref is persisted with the send.
func (o *Outbox) Push(s protocol.Send) (string, error) {
	if s.Ref == "" {
		s.Ref = NewRef()
	}
	return s.Ref, o.update(func() error {
		if len(o.items) >= o.limit {
			return fmt.Errorf("%w: %d messages are waiting for the relay", ErrOutboxFull, len(o.items))
		}
		o.items = append(o.items, Pending{Send: s, QueuedAt: time.Now().UTC()})
		return nil
	})
}

// Peek returns the oldest pending send.
func (o *Outbox) Peek() (Pending, bool) {
	var p Pending
	ok := false
	o.update(func() error {
		if len(o.items) > 0 {
			p, ok = o.items[0], true
		}
		return nil
	})
	return p, ok
}

// Remove drops the pending send with ref.
func (o *Outbox) Remove(ref string) error {
	return o.update(func() error {
		for i, p := range o.items {
			if p.Send.Ref == ref {
				o.items = append(o.items[:i], o.items[i+1:]...)
				break
			}
		}
		return nil
	})
}

// Len is the number of pending sends.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.items)
}

// writeAtomic replaces path with v as JSON (package atomicfile).
func writeAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o600)
}
