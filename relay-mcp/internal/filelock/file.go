package filelock

import (
	"fmt"
	"os"
	"time"
)

// File is a lock file kept open between locks: a process that takes the
// same lock again and again (the inbox, at every message stored or marked
// read) spares the open and the close each time. Not safe for concurrent
// use: its owner serialises Lock and Unlock.
type File struct {
	path string
	f    *os.File
}

// Open opens (creating it if needed) the lock file at path, unlocked.
func Open(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	return &File{path: path, f: f}, nil
}

// Lock blocks until it holds the lock.
func (l *File) Lock() error {
	if err := lockFile(l.f); err != nil {
		return fmt.Errorf("lock %s: %w", l.path, err)
	}
	return nil
}

// LockWithin is Lock bounded in time, as AcquireWithin: past wait it gives
// up with ErrBusy.
func (l *File) LockWithin(wait time.Duration) error {
	return tryFor(l.f, l.path, wait)
}

// Unlock releases the lock; the file stays open.
func (l *File) Unlock() { unlockFile(l.f) }

// Close closes the file (releasing the lock if held).
func (l *File) Close() error { return l.f.Close() }
