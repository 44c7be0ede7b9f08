package filelock

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrBusy is returned by AcquireWithin when another process held the lock
// for the whole wait.
var ErrBusy = errors.New("file is locked by another process")

// AcquireWithin is Acquire bounded in time: it tries without blocking and
// retries until wait has passed, then gives up with ErrBusy. Short-lived
// processes that must answer on time (agent hooks) use it so that a
// stuck writer cannot hang them.
func AcquireWithin(path string, wait time.Duration) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	if err := tryFor(f, path, wait); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{f: f}, nil
}

// tryFor takes the lock on f without blocking, retrying until wait has
// passed; then it gives up with ErrBusy.
func tryFor(f *os.File, path string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		ok, err := tryLockFile(f)
		if err != nil {
			return fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lock %s: %w (waited %s)", path, ErrBusy, wait)
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}
