package filelock

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestAcquireWithin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l, err := AcquireWithin(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := AcquireWithin(path, 30*time.Millisecond); !errors.Is(err, ErrBusy) {
		t.Fatalf("second lock: %v, want ErrBusy", err)
	}
	t.Logf("gave up after %s", time.Since(start))
	l.Release()
	l2, err := AcquireWithin(path, 30*time.Millisecond)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

// A File kept open takes and drops its lock again and again, and excludes
// every other holder of the same path meanwhile.
func TestFileKeptOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 3 {
		if err := l.Lock(); err != nil {
			t.Fatal(err)
		}
		if other, err := AcquireWithin(path, 20*time.Millisecond); !errors.Is(err, ErrBusy) {
			other.Release()
			t.Fatalf("round %d: another holder got the lock: %v", i, err)
		}
		l.Unlock()
		other, err := AcquireWithin(path, time.Second)
		if err != nil {
			t.Fatalf("round %d, unlocked: %v", i, err)
		}
		if err := l.LockWithin(20 * time.Millisecond); !errors.Is(err, ErrBusy) {
			t.Fatalf("round %d: LockWithin while another holds it: %v", i, err)
		}
		other.Release()
	}
}
