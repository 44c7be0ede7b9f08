package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A send reaches the relay, and the connection is lost before relay-mcp
// sees its accepted — the socket dropped, or relayd was killed and
// restarted. relay-mcp sends it again with the same ref over a new
// connection; the relay recognises it, answers with the first accepted,
// and the recipient has the message once.
func TestRetryOverNewConnectionDeliveredOnce(t *testing.T) {
	for _, how := range []string{"socket-dropped", "relayd-killed"} {
		t.Run(how, func(t *testing.T) { retryOverNewConnection(t, how) })
	}
}

func retryOverNewConnection(t *testing.T, how string) {
	data := t.TempDir()
	start := relaytest.Start
	if how == "relayd-killed" {
		start = relaytest.StartProcess // for kill -9
	}
	r := start(t, "--data-dir", data)
	px := newFaultProxy(t, r.Addr)
	homeA := t.TempDir()
	a := spawnAgent(t, px.url, "RETRIER", homeA)
	b := spawnAgent(t, r.URL(), "RETRY-TO", t.TempDir())
	a.waitState(t, "connected")
	b.waitState(t, "connected")

	px.mute()
	sent := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := a.cs.CallTool(ctx, &mcp.CallToolParams{Name: "relay_send", Arguments: map[string]any{"to": "RETRY-TO", "message": "exactly once"}})
		if err != nil {
			sent <- "ERROR: " + err.Error()
			return
		}
		sent <- res.Content[0].(*mcp.TextContent).Text
	}()
	got := b.text(t, "relay_receive", map[string]any{"wait_seconds": 10})
	if !strings.Contains(got, "exactly once") {
		t.Fatalf("the first copy did not arrive: %s", got)
	}
	switch how {
	case "socket-dropped":
		px.cut() // the next connection hears the relay
	case "relayd-killed":
		r.Kill(t)
		r = relaytest.Start(t, "--listen", r.Addr, "--data-dir", data)
	}
	var answer string
	select {
	case answer = <-sent:
	case <-time.After(30 * time.Second):
		t.Fatal("relay_send did not answer")
	}
	if !strings.Contains(answer, "RETRY-TO: delivered") && !strings.Contains(answer, "Queued") {
		t.Fatalf("relay_send answered: %s", answer)
	}
	// The resend goes over the new connection, and the relay answers it
	// with the first message's id (relay-mcp logs it once the outbox no
	// longer holds it).
	resent := regexp.MustCompile(`sent a queued message".* id=(\S+) queued_at`)
	var m []string
	testkit.WaitFor(t, 20*time.Second, "RETRIER to resend the send and have it answered", func() bool {
		m = resent.FindStringSubmatch(a.logs.String())
		return m != nil
	})
	outbox := filepath.Join(homeA, "inbox", "RETRIER", "outbox.json")
	if data, err := os.ReadFile(outbox); err != nil || strings.Contains(string(data), "exactly once") {
		t.Fatalf("RETRIER's outbox after the resend was answered: %s (%v)", data, err)
	}
	t.Logf("relay_send answered %q; the resend was answered as %s", answer, m[1])
	if got := b.text(t, "relay_receive", map[string]any{"wait_seconds": 2}); !strings.HasPrefix(got, "No unread") {
		t.Fatalf("the retry reached RETRY-TO again:\n%s", got)
	}
	all := b.text(t, "relay_receive", map[string]any{"include_read": true})
	if n := strings.Count(all, "exactly once"); n != 1 {
		t.Fatalf("RETRY-TO holds the message %d times:\n%s", n, all)
	}
	if !strings.Contains(all, m[1][len(m[1])-8:]) {
		t.Fatalf("the resend was answered with id %s, RETRY-TO holds:\n%s", m[1], all)
	}
}
