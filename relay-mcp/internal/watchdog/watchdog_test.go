package watchdog

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestReparentedFires(t *testing.T) {
	var ppid atomic.Int64
	ppid.Store(100)
	ch := Watch(t.Context(), Options{Interval: 5 * time.Millisecond, Getppid: func() int { return int(ppid.Load()) }, Alive: func(int) bool { return true }})
	select {
	case <-ch:
		t.Fatal("fired with the parent alive")
	case <-time.After(30 * time.Millisecond):
	}
	ppid.Store(1)
	select {
	case r := <-ch:
		t.Log(r)
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire")
	}
}

func TestDeadParentFires(t *testing.T) {
	ch := Watch(t.Context(), Options{Interval: 5 * time.Millisecond, Getppid: func() int { return 100 }, Alive: func(int) bool { return false }})
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire")
	}
}

func TestStartedByInitNeverFires(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	ch := Watch(ctx, Options{Interval: 5 * time.Millisecond, Getppid: func() int { return 1 }, Alive: func(int) bool { return false }})
	select {
	case <-ch:
		t.Fatal("fired for a process started by init")
	case <-ctx.Done():
	}
}
