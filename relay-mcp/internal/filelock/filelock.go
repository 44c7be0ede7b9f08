// Package filelock holds an advisory, exclusive lock on a file, shared by the
// registry and the inbox so that several relay-mcp processes (and hooks) can
// write the same files without losing updates.
package filelock

import (
	"fmt"
	"os"
)

// Lock is an exclusive advisory lock held on an open file.
type Lock struct{ f *os.File }

// Acquire opens (creating it if needed) the file at path and blocks until it
// holds an exclusive lock on it.
func Acquire(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release drops the lock and closes the file.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	unlockFile(l.f)
	err := l.f.Close()
	l.f = nil
	return err
}
