package hub

import (
	"strconv"
	"testing"

	"github.com/claude-relay/claude-relay/protocol"
)

// The retry window: a send is known again by its ref and content on any
// connection of its client, for its client's last protocol.RefWindow refs.
func TestRefWindow(t *testing.T) {
	h := &Hub{refs: map[string]*refWindow{}}
	a := "CC-1"
	digest := func(s string) (d [32]byte) { copy(d[:], s); return d }
	accepted := func(id string) *protocol.Accepted { return &protocol.Accepted{ID: id} }

	if got := h.seenRef(a, "r0", digest("x")); got != nil {
		t.Fatalf("a ref never sent: seen as %v", got)
	}
	h.rememberRef(a, "r0", digest("x"), accepted("m0"))
	if got := h.seenRef(a, "r0", digest("x")); got == nil || got.ID != "m0" {
		t.Fatalf("the same send again: %v, want m0", got)
	}
	if got := h.seenRef(a, "r0", digest("y")); got != nil {
		t.Fatalf("the ref with other content: seen as %v, want a new send", got)
	}
	// The client's next connection (the same id) finds it.
	a2 := "CC-1"
	if got := h.seenRef(a2, "r0", digest("x")); got == nil || got.ID != "m0" {
		t.Fatalf("the retry on a new connection: %v, want m0", got)
	}
	if got := h.seenRef("CC-2", "r0", digest("x")); got != nil {
		t.Fatalf("another client's ref: seen as %v", got)
	}
	// A reused ref: the newest content wins and keeps one place.
	h.rememberRef(a2, "r0", digest("y"), accepted("m0b"))
	if got := h.seenRef(a, "r0", digest("y")); got == nil || got.ID != "m0b" {
		t.Fatalf("the reused ref's newest send: %v, want m0b", got)
	}
	if got := h.seenRef(a, "r0", digest("x")); got != nil {
		t.Fatalf("the reused ref's first content: seen as %v", got)
	}
	// RefWindow-1 more refs: r0 is still in the window; one more pushes it out.
	for i := 1; i < protocol.RefWindow; i++ {
		h.rememberRef(a, "r"+strconv.Itoa(i), digest("x"), accepted("m"+strconv.Itoa(i)))
	}
	if got := h.seenRef(a, "r0", digest("y")); got == nil {
		t.Fatal("r0 left the window before RefWindow refs")
	}
	h.rememberRef(a, "r-last", digest("x"), accepted("m-last"))
	if got := h.seenRef(a, "r0", digest("y")); got != nil {
		t.Fatalf("r0 after RefWindow newer refs: still seen as %v", got)
	}
	for _, ref := range []string{"r1", "r" + strconv.Itoa(protocol.RefWindow-1), "r-last"} {
		if h.seenRef(a2, ref, digest("x")) == nil {
			t.Errorf("%s, among the last RefWindow refs: not seen", ref)
		}
	}
	if n := len(h.refs["CC-1"].seen); n != protocol.RefWindow {
		t.Errorf("window holds %d refs, want %d", n, protocol.RefWindow)
	}
}
