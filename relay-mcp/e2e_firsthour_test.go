package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/cli"
)

// One-shot commands say goodbye: relayd logs their leaving as a clean close,
// not as a lost connection.
func TestE2EOneShotsSayGoodbye(t *testing.T) {
	r := startRelay(t, "127.0.0.1:0", "")
	home := t.TempDir()
	env := []string{"RELAY_HOME=" + home, "RELAY_URL=" + r.url(), "CLAUDE_RELAY_SESSION_ID=", "RELAY_CLIENT_ID="}
	peer := spawnAgent(t, r.url(), "CC-2", home)
	peer.waitState(t, "connected")
	for _, args := range [][]string{{"send", "CC-2", "one"}, {"peers"}, {"send", "--as", "ME", "CC-2", "two"}, {"receive", "--id", "ME"}} {
		if code, out, errs := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%v: %d %q %q", args, code, out, errs)
		}
	}
	host, _ := os.Hostname()
	poll(t, "relayd logs four one-shots leaving", 10*time.Second, func() bool {
		return strings.Count(r.logs.String(), "msg=\"client left\" client="+cli.CLIID(host)) == 2 && strings.Count(r.logs.String(), "msg=\"client left\" client=ME") == 2
	})
	for _, ln := range strings.Split(r.logs.String(), "\n") {
		if strings.Contains(ln, "client left") && (strings.Contains(ln, "client=ME") || strings.Contains(ln, "client=cli-")) && !strings.Contains(ln, `reason="closed by client"`) {
			t.Errorf("a one-shot left without a goodbye: %s", ln)
		}
	}
}

// send, peers and receive give up at once when nothing listens at the
// relay's address, instead of waiting out --timeout (5 s).
func TestE2EOneShotsFailFastWhenRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := []string{"RELAY_HOME=" + t.TempDir(), "RELAY_URL=ws://" + addr, "CLAUDE_RELAY_SESSION_ID=", "RELAY_CLIENT_ID=", "RELAY_AUTOSTART=off"}
	for _, args := range [][]string{{"send", "CC-2", "x"}, {"peers"}, {"receive", "--id", "CC-2"}} {
		start := time.Now()
		code, _, errs := runCLI(t, env, args...)
		took := time.Since(start)
		if code != cli.ExitUnreachable || !strings.Contains(errs, "relayd") {
			t.Errorf("%v: exit %d %q, want %d and a hint to start relayd", args, code, errs, cli.ExitUnreachable)
		}
		if took > 2*time.Second {
			t.Errorf("%v took %s to say the relay is not there (connection refused at once)", args, took.Round(time.Millisecond))
		}
	}
}

// A message read through relay_receive is read for its sender at once:
// relay_status right after the read says read, without polling.
func TestE2EReadReceiptNoLag(t *testing.T) {
	r := startRelay(t, "127.0.0.1:0", "")
	a := spawnAgent(t, r.url(), "CC-1", t.TempDir())
	b := spawnAgent(t, r.url(), "CC-2", t.TempDir())
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	for i := range 3 {
		_, sc := a.call(t, "relay_send", map[string]any{"to": "CC-2", "message": fmt.Sprint("note ", i)})
		id, _ := sc["id"].(string)
		if got := b.bodies(t, 1); len(got) != 1 {
			t.Fatalf("CC-2 received %v", got)
		}
		if st := receiptState(t, a, id, "CC-2"); st != "read" {
			t.Fatalf("right after CC-2 read message %d, CC-1's relay_status says %q", i, st)
		}
	}
}
