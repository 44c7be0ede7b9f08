package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// relay-mcp given a list of relays (RELAY_URL=a,b,c, as for a cluster's
// nodes) connects to the first that answers, says which in relay_status,
// and when that relay dies moves to the next: relay_send works there and
// a send made in between reaches its recipient once. Two independent
// relayds stand in for two nodes: the failover is relay-mcp's alone.
func TestE2EFailoverBetweenRelayURLs(t *testing.T) {
	r1 := relaytest.Start(t, "--store", "memory")
	r2 := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	list := "ws://" + testkit.RefusedAddr(t) + "," + r1.URL() + "," + r2.URL()
	a := spawnAgent(t, list, "A", home)
	b := spawnAgent(t, r2.URL(), "B", home)
	a.waitState(t, "connected")
	b.waitState(t, "connected")

	txt, sc := a.call(t, "relay_status", nil)
	if sc["relay_url"] != r1.URL()+"/v1/ws" || !strings.Contains(txt, "one of 3 relays") {
		t.Fatalf("status on the first relay that answers (the first URL refuses): %v\n%s", sc, txt)
	}
	if urls, _ := sc["relay_urls"].([]any); len(urls) != 3 {
		t.Fatalf("relay_urls: %v", sc["relay_urls"])
	}

	r1.Stop() // the connected relay dies; the list's first is still down
	killed := time.Now()
	txt, _ = a.call(t, "relay_send", map[string]any{"to": "B", "message": "in between"})
	if !strings.Contains(txt, "B: delivered") && !strings.Contains(txt, "Queued") {
		t.Fatalf("send while moving between relays: %s", txt)
	}
	testkit.WaitFor(t, 20*time.Second, "A on the third URL", func() bool {
		_, sc := a.call(t, "relay_status", nil)
		return sc["state"] == "connected" && sc["relay_url"] == r2.URL()+"/v1/ws"
	})
	t.Logf("connected to the third URL %s after the kill (a send and status polls in between)", time.Since(killed).Round(time.Millisecond))
	txt, _ = a.call(t, "relay_send", map[string]any{"to": "B", "message": "after"})
	if !strings.Contains(txt, "B: delivered") {
		t.Fatalf("send after the failover: %s", txt)
	}
	if got := strings.Join(b.bodies(t, 2), ","); got != "in between,after" {
		t.Fatalf("B got %q, want the send made in between and the one after, once each", got)
	}
	if txt, _ := b.call(t, "relay_receive", nil); !strings.HasPrefix(txt, "No unread") {
		t.Fatalf("B got more: %s", txt)
	}
	_, sc = a.call(t, "relay_status", nil)
	if sc["reconnects"].(float64) != 1 || sc["queued_outgoing"].(float64) != 0 {
		t.Fatalf("status after the failover: %v", sc)
	}
}

// Every URL of the list is checked before anything starts: a bad one is a
// usage error that names it.
func TestE2ERelayURLListValidated(t *testing.T) {
	code, _, errOut := runCLI(t, []string{"RELAY_HOME=" + t.TempDir(), "RELAY_URL=ws://127.0.0.1:9999,ftp://relay.lan:9999"}, "peers")
	if code != 2 || !strings.Contains(errOut, "ftp://relay.lan:9999") || !strings.Contains(errOut, "ws:// or wss://") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// relay-mcp doctor with a list checks every relay of it: the one that is
// down fails with its fix, the one that answers passes, and the local
// checks run once.
func TestE2EDoctorChecksEveryRelayOfTheList(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	dead := testkit.RefusedAddr(t)
	code, out := doctor(t, "RELAY_URL=ws://"+dead+","+r.URL(), "RELAY_HOME="+t.TempDir(), "RELAY_TOKEN=", "RELAY_TOKEN_FILE=")
	t.Logf("doctor:\n%s", out)
	first, second, _ := strings.Cut(out, "relay 2 of 2: "+r.URL()+"/v1/ws\n")
	if code != 1 || !strings.Contains(first, "relay 1 of 2: ws://"+dead+"/v1/ws") || second == "" {
		t.Fatalf("exit %d: want a section per relay", code)
	}
	if fails := statusLines(out, "FAIL"); len(fails) != 1 || !strings.Contains(fails[0], "TCP connect "+dead+": connection refused") {
		t.Fatalf("fails %q: want the dead relay's only", fails)
	}
	if !strings.Contains(second, `welcome from "relayd `) {
		t.Fatal("the relay that answers was not checked through to its welcome")
	}
	if n := strings.Count(out, "inbox directory"); n != 1 {
		t.Fatalf("local checks ran %d times", n)
	}
	if !strings.Contains(out, "autostart: not for a list of relays") {
		t.Fatal("autostart note")
	}
}
