// Package registry keeps the sessions of this machine in
// $RELAY_HOME/sessions/registry.json: who registered, where, with which
// process, and whether it is online. Many processes write it at once
// (every relay-mcp on start and exit, `relay-mcp session register` from a
// shell), so every change is a read-modify-write under an advisory lock on
// registry.lock, written to a temp file and renamed over the old one. A file
// that cannot be read is moved aside with a warning, never a crash.
package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/claude-relay/claude-relay/internal/atomicfile"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/filelock"
)

// FileVersion is the version of registry.json written by this package.
const FileVersion = 1

// Session is one registered session.
type Session struct {
	ID           string    `json:"id"`
	Host         string    `json:"host,omitempty"`
	PID          int       `json:"pid,omitempty"`
	Cwd          string    `json:"cwd,omitempty"`
	Agent        string    `json:"agent,omitempty"`
	Label        string    `json:"label,omitempty"`
	RegisteredAt time.Time `json:"registered_at"`
	LastSeen     time.Time `json:"last_seen"`
	Online       bool      `json:"online"`
}

// File is the content of registry.json.
type File struct {
	Version  int                 `json:"version"`
	Sessions map[string]*Session `json:"sessions"`
}

// Decode parses registry.json. It never panics; any error means the file is
// unusable and should be moved aside.
func Decode(data []byte) (*File, error) {
	f := &File{}
	if err := json.Unmarshal(data, f); err != nil {
		return nil, fmt.Errorf("registry is not valid JSON: %w", err)
	}
	if f.Version > FileVersion {
		return nil, fmt.Errorf("registry version %d is newer than this relay-mcp understands (%d)", f.Version, FileVersion)
	}
	if f.Sessions == nil {
		f.Sessions = map[string]*Session{}
	}
	for k, s := range f.Sessions {
		if s == nil {
			return nil, fmt.Errorf("registry entry %q is null", k)
		}
		if err := protocol.ValidateID(k); err != nil {
			return nil, fmt.Errorf("registry entry %q: %w", k, err)
		}
		s.ID = k
	}
	return f, nil
}

// Registry is the registry file of one RELAY_HOME.
type Registry struct {
	dir    string
	logger *slog.Logger
}

// Open returns the registry under home ($RELAY_HOME); the directory is
// created on the first write.
func Open(home string, logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{dir: filepath.Join(home, "sessions"), logger: logger}
}

// Path is the registry file.
func (r *Registry) Path() string { return filepath.Join(r.dir, "registry.json") }

func (r *Registry) read() (*File, error) {
	data, err := os.ReadFile(r.Path())
	if errors.Is(err, os.ErrNotExist) {
		return &File{Version: FileVersion, Sessions: map[string]*Session{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registry %s: %w", r.Path(), err)
	}
	f, err := Decode(data)
	if err != nil {
		aside := r.Path() + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000000000")
		if rerr := os.Rename(r.Path(), aside); rerr != nil {
			return nil, fmt.Errorf("registry %s is unreadable (%v) and could not be moved aside: %w", r.Path(), err, rerr)
		}
		r.logger.Warn("session registry was unreadable; moved it aside and started a new one", "path", r.Path(), "moved_to", aside, "err", err)
		return &File{Version: FileVersion, Sessions: map[string]*Session{}}, nil
	}
	return f, nil
}

// Update applies fn to the registry under the lock and writes the result
// atomically.
func (r *Registry) Update(fn func(*File) error) error {
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", r.dir, err)
	}
	l, err := filelock.Acquire(filepath.Join(r.dir, "registry.lock"))
	if err != nil {
		return err
	}
	defer l.Release()
	f, err := r.read()
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		return err
	}
	f.Version = FileVersion
	return writeAtomic(r.Path(), f)
}

// List returns the sessions, sorted by id.
func (r *Registry) List() ([]Session, error) {
	var out []Session
	err := r.Update(func(f *File) error { // under the lock: a corrupt file is moved aside once
		for _, s := range f.Sessions {
			out = append(out, *s)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// Register records s (keeping its first registration time) as seen now.
func (r *Registry) Register(s Session) error {
	if err := protocol.ValidateID(s.ID); err != nil {
		return err
	}
	now := time.Now().UTC()
	return r.Update(func(f *File) error {
		if old := f.Sessions[s.ID]; old != nil && !old.RegisteredAt.IsZero() {
			s.RegisteredAt = old.RegisteredAt
		} else {
			s.RegisteredAt = now
		}
		s.LastSeen = now
		f.Sessions[s.ID] = &s
		return nil
	})
}

// SetOffline marks id offline if it is still held by pid (a newer process
// that took the id over stays online).
func (r *Registry) SetOffline(id string, pid int) error {
	return r.Update(func(f *File) error {
		if s := f.Sessions[id]; s != nil && (pid == 0 || s.PID == pid) {
			s.Online = false
			s.LastSeen = time.Now().UTC()
		}
		return nil
	})
}

// Remove deletes id and reports whether it was there.
func (r *Registry) Remove(id string) (bool, error) {
	found := false
	err := r.Update(func(f *File) error {
		_, found = f.Sessions[id]
		delete(f.Sessions, id)
		return nil
	})
	return found, err
}

func writeAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("session registry: %w", err)
	}
	return nil
}
