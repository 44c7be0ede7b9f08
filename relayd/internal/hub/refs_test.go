package hub

import (
	"strconv"
	"testing"

	"github.com/claude-relay/claude-relay/protocol"
)

// The retry window: a send is known again by its client, ref and content,
// for the client's last protocol.RefWindow refs.
func TestRefWindow(t *testing.T) {
	h := &Hub{refs: map[string]*refWindow{}}
	digest := func(content string) (d [32]byte) { copy(d[:], content); return d }
	remember := func(ref, content, id string) {
		h.rememberRef("CC-1", ref, digest(content), &protocol.Accepted{ID: id})
	}
	// seen is the id of the send known by (client, ref, content), or "".
	seen := func(client, ref, content string) string {
		if acc := h.seenRef(client, ref, digest(content)); acc != nil {
			return acc.ID
		}
		return ""
	}
	check := func(what, client, ref, content, want string) {
		t.Helper()
		if got := seen(client, ref, content); got != want {
			t.Errorf("%s: seen as %q, want %q", what, got, want)
		}
	}

	check("a ref never sent", "CC-1", "r0", "x", "")
	remember("r0", "x", "m0")
	check("the same send again", "CC-1", "r0", "x", "m0")
	check("the ref with other content", "CC-1", "r0", "y", "")
	check("another client's ref", "CC-2", "r0", "x", "")
	// A reused ref: the newest content wins, in the ref's one place.
	remember("r0", "y", "m0b")
	check("the reused ref's newest send", "CC-1", "r0", "y", "m0b")
	check("the reused ref's first content", "CC-1", "r0", "x", "")
	// RefWindow-1 more refs: r0 is still in the window; one more pushes it out.
	for i := 1; i < protocol.RefWindow; i++ {
		remember("r"+strconv.Itoa(i), "x", "m"+strconv.Itoa(i))
	}
	check("r0 after RefWindow-1 newer refs", "CC-1", "r0", "y", "m0b")
	remember("r-last", "x", "m-last")
	check("r0 after RefWindow newer refs", "CC-1", "r0", "y", "")
	for _, ref := range []string{"r1", "r" + strconv.Itoa(protocol.RefWindow-1)} {
		check(ref+", among the last RefWindow refs", "CC-1", ref, "x", "m"+ref[1:])
	}
	check("the newest ref", "CC-1", "r-last", "x", "m-last")
	if n := len(h.refs["CC-1"].seen); n != protocol.RefWindow {
		t.Errorf("window holds %d refs, want %d", n, protocol.RefWindow)
	}
}
