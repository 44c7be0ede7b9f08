//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive advisory lock on dir/relay.lock so that two
// relayd processes never share one store: each keeps mailbox seqs in memory,
// and two writers would hand out the same seq. The kernel drops the lock
// when the process dies, kill -9 included.
func lockDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "relay.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w — make the data directory writable by the user running relayd", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another relayd (it holds %s) — stop that one, or give this one another --data-dir", dir, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
