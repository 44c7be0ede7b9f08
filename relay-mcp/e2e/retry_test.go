package e2e

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// muteProxy forwards loopback TCP connections to a relay. mute drops what
// the relay sends on the connections open now, for good (a send reaches
// the relay, its accepted never comes back — not even bytes the relay wrote
// just before it died); connections made later are not muted. cut closes
// the connections open now.
type muteProxy struct {
	url  string
	mu   sync.Mutex
	open []*proxied
}

type proxied struct {
	client, up net.Conn
	muted      atomic.Bool
}

func newMuteProxy(t *testing.T, addr string) *muteProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &muteProxy{url: "ws://" + ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			pc := &proxied{client: c, up: up}
			p.mu.Lock()
			p.open = append(p.open, pc)
			p.mu.Unlock()
			go func() {
				defer c.Close()
				defer up.Close()
				go io.Copy(up, c)
				buf := make([]byte, 32<<10)
				for {
					n, err := up.Read(buf)
					if n > 0 && !pc.muted.Load() {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *muteProxy) mute() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.open {
		pc.muted.Store(true)
	}
}

func (p *muteProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.open {
		pc.client.Close()
		pc.up.Close()
	}
	p.open = nil
}

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
	px := newMuteProxy(t, r.Addr)
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
	outbox := filepath.Join(homeA, "inbox", "RETRIER", "outbox.json")
	testkit.WaitFor(t, 20*time.Second, "RETRIER's outbox to empty (the retry answered)", func() bool {
		data, err := os.ReadFile(outbox)
		return err == nil && !strings.Contains(string(data), "exactly once")
	})
	// The resend went over the new connection, and the relay answered it
	// with the first message's id.
	m := regexp.MustCompile(`sent a queued message".* id=(\S+) queued_at`).FindStringSubmatch(a.logs.String())
	if m == nil {
		t.Fatalf("RETRIER never resent the send:\n%s", tail(a.logs.String(), 2000))
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
