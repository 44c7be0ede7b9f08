// Package testkit holds the helpers the tests of relayd and relay-mcp
// share: a wait that polls a condition until a deadline (never a bare
// sleep), and a buffer that a process or goroutine writes its log to while
// the test reads it.
package testkit

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// Every is how often WaitFor checks its condition.
const Every = 10 * time.Millisecond

// WaitFor checks cond every few milliseconds until it holds, and fails t
// ("timed out after 10s waiting for what") if it still does not after
// within.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Eventually(within, cond) {
		t.Fatalf("timed out after %v waiting for %s", within, what)
	}
}

// Eventually checks cond every few milliseconds until it holds or within
// has passed, and reports whether it held: for a test that says more on a
// timeout than WaitFor can (what it saw last, item by item).
func Eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(Every)
	}
	return true
}

// Buffer is a bytes.Buffer that one writer (a process's stderr, a logger)
// and the test may use at the same time.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// RefusedAddr is a loopback host:port where nothing listens (it was bound a
// moment ago and closed): a dial there is refused at once.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
