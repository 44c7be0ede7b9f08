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
