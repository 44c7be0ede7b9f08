package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/tools"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// captureTransport hands the client every message but the channel
// notifications, which it keeps (the go-sdk client has no handler for
// them).
type captureTransport struct {
	mcp.Transport
	got chan *jsonrpc.Request
}

func (t *captureTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	c, err := t.Transport.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &captureConn{Connection: c, got: t.got}, nil
}

type captureConn struct {
	mcp.Connection
	got chan *jsonrpc.Request
}

func (c *captureConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	for {
		m, err := c.Connection.Read(ctx)
		if r, ok := m.(*jsonrpc.Request); ok && err == nil && r.Method == tools.ChannelMethod {
			c.got <- r
			continue
		}
		return m, err
	}
}

// With --channels (RELAY_CHANNELS=1) relay-mcp declares the experimental
// claude/channel capability and sends each new message as a
// notifications/claude/channel event: content framed as data from a peer,
// meta from, id, thread.
func TestChannelNotification(t *testing.T) {
	r := relaytest.Start(t)
	cmd := exec.Command(bins.relayMCP)
	cmd.Env = append(os.Environ(), "RELAY_HOME="+t.TempDir(), "RELAY_URL="+r.URL(), "CLAUDE_RELAY_SESSION_ID=CC-2", "RELAY_CHANNELS=1")
	tr := &captureTransport{Transport: &mcp.CommandTransport{Command: cmd, TerminateDuration: 5 * time.Second}, got: make(chan *jsonrpc.Request, 4)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "channel-test", Version: "1"}, nil).Connect(ctx, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	caps := cs.InitializeResult().Capabilities
	if _, ok := caps.Experimental[tools.ChannelCapability]; !ok {
		t.Fatalf("capabilities do not declare %s: %+v", tools.ChannelCapability, caps)
	}

	peer := spawnAgent(t, r.URL(), "CC-1", t.TempDir())
	peer.waitState(t, "connected")
	testkit.WaitFor(t, 15*time.Second, "CC-2 online", func() bool {
		return strings.Contains(peer.text(t, "relay_send", map[string]any{"to": "CC-2", "message": "the bug is in auth.js line 42", "thread": "auth"}), "CC-2: delivered")
	})
	var n *jsonrpc.Request
	select {
	case n = <-tr.got:
	case <-ctx.Done():
		t.Fatal("no channel notification")
	}
	var p tools.ChannelParams
	if err := json.Unmarshal(n.Params, &p); err != nil {
		t.Fatal(err)
	}
	if n.ID.IsValid() {
		t.Fatalf("the channel event is a request, not a notification: %+v", n)
	}
	if !strings.Contains(p.Content, "the bug is in auth.js line 42") || !strings.Contains(p.Content, "data from a peer") ||
		p.Meta["from"] != "CC-1" || p.Meta["thread"] != "auth" || len(p.Meta["id"]) != 36 {
		t.Fatalf("channel event: %s", n.Params)
	}
	// The tools still answer: the wrapped transport carries the rest.
	if got := callText(t, cs, "relay_status"); !strings.HasPrefix(got, "connected ") {
		t.Fatalf("relay_status: %s", got)
	}
}

// Without the flag the capability is not declared.
func TestNoChannelByDefault(t *testing.T) {
	p := spawnAgent(t, "ws://127.0.0.1:1", "CC-2", t.TempDir())
	if caps := p.cs.InitializeResult().Capabilities; caps.Experimental[tools.ChannelCapability] != nil {
		t.Fatalf("declared %s without --channels", tools.ChannelCapability)
	}
}

func callText(t *testing.T, cs *mcp.ClientSession, name string) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	var s string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			s += tc.Text
		}
	}
	return s
}
