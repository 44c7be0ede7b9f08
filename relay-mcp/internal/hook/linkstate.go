package hook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/proc"
)

// LinkState is what the running relay-mcp server says about its connection,
// in the inbox directory (link.json), for the hooks: a hook at the start of
// a turn waits for the server's first sync with the relay (the mail that
// waited there while the session was away is then in the inbox), and says
// honestly when the relay cannot be reached.
type LinkState struct {
	PID    int       `json:"pid"`
	State  string    `json:"state"` // connecting, connected, reconnecting, stopped, closed
	URL    string    `json:"url"`
	Error  string    `json:"error,omitempty"`
	Synced bool      `json:"synced"` // connected, and what the relay held at hello is in the inbox
	At     time.Time `json:"at"`
}

const linkStateFile = "link.json"

// WriteLinkState replaces dir's link.json atomically.
func WriteLinkState(dir string, s LinkState) error {
	return writeJSONFile(dir, linkStateFile, s)
}

// ReadLinkState reads dir's link.json; ok is false when there is none or
// its server is not running.
func ReadLinkState(dir string) (LinkState, bool) {
	var s LinkState
	b, err := os.ReadFile(filepath.Join(dir, linkStateFile))
	if err != nil || json.Unmarshal(b, &s) != nil {
		return s, false
	}
	return s, proc.Alive(s.PID)
}

// Settled reports whether the server's connection has come to a state a
// hook can report truthfully: synced, or failed (the relay is not
// reachable, or refused the session).
func (s LinkState) Settled() bool {
	return s.Synced || s.State == "reconnecting" || s.State == "stopped" || s.State == "closed"
}

// WaitSync waits, at most max, for a running server's link to settle, and
// returns what it found (ok false: no running server said anything).
// Hooks poll here: a hook lives for milliseconds, and 20 ms steps bound the
// wait's cost.
func WaitSync(dir string, max time.Duration) (LinkState, bool) {
	deadline := time.Now().Add(max)
	for {
		s, ok := ReadLinkState(dir)
		if (ok && s.Settled()) || time.Now().After(deadline) {
			return s, ok
		}
		time.Sleep(20 * time.Millisecond)
	}
}
