package relaytest_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

func TestMain(m *testing.M) {
	relaytest.Main()
	os.Exit(m.Run())
}

// healthy says whether relayd at addr answers /healthz with 200.
func healthy(addr string) bool {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Start serves the flags it is given, answers once it is up, and Stop ends
// it: nothing listens on its port after.
func TestStartServesTheFlagsAndStops(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	if !strings.HasPrefix(r.URL(), "ws://127.0.0.1:") || !healthy(r.Addr) {
		t.Fatalf("relay at %s is not up", r.URL())
	}
	if logs := r.Logs(); !strings.Contains(logs, "store=memory") {
		t.Fatalf("the flags were not served; log:\n%s", logs)
	}
	r.Stop()
	if healthy(r.Addr) {
		t.Fatal("relayd still answers after Stop")
	}
	r.Stop() // a second Stop is harmless
}

// A relayd of StartProcess dies by kill -9, and one started again on its
// address and data directory serves there.
func TestStartProcessKillAndRestart(t *testing.T) {
	data := t.TempDir()
	r := relaytest.StartProcess(t, "--data-dir", data)
	if !healthy(r.Addr) {
		t.Fatalf("relayd process at %s is not up", r.Addr)
	}
	r.Kill(t)
	if healthy(r.Addr) {
		t.Fatal("relayd still answers after Kill")
	}
	r2 := relaytest.StartProcess(t, "--listen", r.Addr, "--data-dir", data)
	if r2.Addr != r.Addr || !healthy(r2.Addr) {
		t.Fatalf("restarted relayd at %s, want %s", r2.Addr, r.Addr)
	}
}
