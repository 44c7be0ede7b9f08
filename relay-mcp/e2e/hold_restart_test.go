package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// TestOperatorHoldSurvivesARestart: the operator holds a pair from the
// console; relayd (a process, its default store) is killed with
// SIGKILL and started again on its data. The agents' relay-mcp (real
// subprocesses, which forget the relay's notices at every welcome) are
// told of the hold again by the new relayd, a send within the pair is
// still refused, the console says who held it, and a release after the
// restart lets them talk, recorded with who released it.
func TestOperatorHoldSurvivesARestart(t *testing.T) {
	data := t.TempDir()
	r := relaytest.StartProcess(t, "--data-dir", data)
	agents := connectedAgents(t, r.URL(), t.TempDir(), "CC-1", "CC-2")
	cc1, cc2 := agents[0], agents[1]
	consolePost(t, r, "hold", `{"pair":["CC-2","CC-1"],"as":"ana"}`)
	const told = "Notice from the relay: the relay's operator put you and "
	testkit.WaitFor(t, 15*time.Second, "CC-1 told of the hold", func() bool {
		return strings.Contains(cc1.text(t, "relay_status", nil), told+"CC-2 on hold")
	})

	r.Kill(t)
	for _, p := range agents {
		testkit.WaitFor(t, 15*time.Second, p.id+" off the killed relay", func() bool {
			_, sc := p.call(t, "relay_status", nil)
			return sc["state"] != "connected"
		})
	}
	r = relaytest.StartProcess(t, "--listen", r.Addr, "--data-dir", data)
	for _, p := range agents {
		other := map[string]string{"CC-1": "CC-2", "CC-2": "CC-1"}[p.id]
		p.waitState(t, "connected")
		testkit.WaitFor(t, 15*time.Second, p.id+" told of the hold by the restarted relay", func() bool {
			return strings.Contains(p.text(t, "relay_status", nil), told+other+" on hold")
		})
	}
	if got := cc2.text(t, "relay_send", map[string]any{"to": "CC-1", "message": "thanks again"}); !strings.HasPrefix(got, "ERROR: ") ||
		!strings.Contains(got, "on hold") {
		t.Errorf("CC-2 → CC-1 held before the restart, sent after it: %s; want refused, naming the hold", got)
	}
	st := consoleHolds(t, r)
	if len(st.Holds) != 1 || st.Holds[0].Pair != [2]string{"CC-1", "CC-2"} || st.Holds[0].By != "person.ana" || st.Holds[0].At.IsZero() {
		t.Errorf("the console's holds after the restart: %+v; want CC-1 ↔ CC-2 held by person.ana, with its time", st.Holds)
	}

	consolePost(t, r, "release", `{"pair":["CC-1","CC-2"],"as":"bob"}`)
	for _, p := range agents {
		testkit.WaitFor(t, 15*time.Second, p.id+"'s notice withdrawn by the release", func() bool {
			return !strings.Contains(p.text(t, "relay_status", nil), "Notice")
		})
	}
	if got := cc2.text(t, "relay_send", map[string]any{"to": "CC-1", "message": "back to the parser"}); !strings.HasPrefix(got, "Sent ") {
		t.Fatalf("CC-2 → CC-1 after the release: %s", got)
	}
	if got := cc1.bodies(t, 1); len(got) != 1 || got[0] != "back to the parser" {
		t.Errorf("CC-1 received %q after the release, want the message", got)
	}
	st = consoleHolds(t, r)
	if len(st.Holds) != 0 || len(st.Released) != 1 || st.Released[0].ReleasedBy != "person.bob" || st.Released[0].By != "person.ana" {
		t.Errorf("the console after the release: %+v; want no hold, the release by person.bob recorded", st)
	}
}

type consoleHoldView struct {
	Pair       [2]string `json:"pair"`
	By         string    `json:"by"`
	At         time.Time `json:"at"`
	ReleasedBy string    `json:"released_by"`
}

// consoleHolds reads the holds and releases the console's page shows.
func consoleHolds(t *testing.T, r *relaytest.Relay) (st struct{ Holds, Released []consoleHoldView }) {
	t.Helper()
	resp, err := http.Get("http://" + r.Addr + "/console/api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("the console's state: %v", err)
	}
	return st
}
