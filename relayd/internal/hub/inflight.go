package hub

import (
	"context"
	"sync"
)

// inFlight counts work under way — a client's sends until the store has
// settled them, read reports until they are written — so that a request
// can wait for what began before it: a client reads its own writes, and a
// sender sees the reads its peer reported.
type inFlight struct {
	mu      sync.Mutex
	n       int
	settled chan struct{} // closed when n falls to 0
}

func (f *inFlight) begin() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.settled = make(chan struct{})
	}
	f.n++
}

func (f *inFlight) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 {
		close(f.settled)
	}
}

// count is how much is in flight now.
func (f *inFlight) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// wait waits until nothing is in flight, or ctx ends. Work that begins
// meanwhile is waited for too: it comes at the pace of one client's frames
// or of models reading, so there is a moment with none.
func (f *inFlight) wait(ctx context.Context) {
	f.mu.Lock()
	n, ch := f.n, f.settled
	f.mu.Unlock()
	if n == 0 {
		return
	}
	select {
	case <-ch:
	case <-ctx.Done():
	}
}
