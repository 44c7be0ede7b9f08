package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/registry"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

type agent struct {
	cs *mcp.ClientSession
	l  *link.Link
	in *inbox.Inbox
}

// newAgent wires the tools for id to a link on relayURL and an in-memory
// MCP client.
func newAgent(t testing.TB, relayURL, id string) *agent {
	t.Helper()
	home := t.TempDir()
	in, err := inbox.Open(filepath.Join(home, "inbox", id), inbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := inbox.OpenOutbox(filepath.Join(home, "inbox", id), 0)
	l := link.New(link.Config{URL: relayURL, Hello: protocol.Hello{ClientID: id, Agent: "test"}, Inbox: in, Outbox: out,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()

	s := mcp.NewServer(&mcp.Implementation{Name: "claude-relay", Version: "test"}, &mcp.ServerOptions{Instructions: Instructions})
	Register(s, &Deps{Link: l, Inbox: in, Registry: registry.Open(home, nil), Started: time.Now(), ProgressEvery: 50 * time.Millisecond, Structured: true})
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, nil)
	cs, err := c.Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
		cancel()
		<-done
		in.Close()
	})
	return &agent{cs: cs, l: l, in: in}
}

func (a *agent) call(t *testing.T, name string, args any) (string, map[string]any, bool) {
	t.Helper()
	res, err := a.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var text string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text += tc.Text
		}
	}
	var sc map[string]any
	if res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		json.Unmarshal(b, &sc)
	}
	return text, sc, res.IsError
}

func waitConnected(t *testing.T, as ...*agent) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range as {
		for a.l.Status().State != link.StateConnected {
			if time.Now().After(deadline) {
				t.Fatal("not connected")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestToolSchemasGolden(t *testing.T) {
	r := relaytest.New(t)
	a := newAgent(t, r.URL(), "G")
	res, err := a.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, tool := range res.Tools {
		compact, _ := json.Marshal(tool)
		total += len(compact)
		checkSchemaGolden(t, tool)
	}
	if len(res.Tools) != 6 {
		t.Fatalf("%d tools", len(res.Tools))
	}
	t.Logf("tools/list: %d tools, %d bytes of JSON", len(res.Tools), total)
}

func TestSendReceiveDirectListBroadcast(t *testing.T) {
	r := relaytest.New(t)
	a, b, c := newAgent(t, r.URL(), "A"), newAgent(t, r.URL(), "B"), newAgent(t, r.URL(), "C")
	waitConnected(t, a, b, c)

	txt, sc, isErr := a.call(t, "relay_send", map[string]any{"to": "B", "message": "hello B", "thread": "t1"})
	if isErr || !strings.Contains(txt, "B: delivered") || sc["id"] == "" {
		t.Fatalf("send: %s %v", txt, sc)
	}
	txt, _, _ = a.call(t, "relay_send", map[string]any{"to": "B, C", "message": "to both"})
	if !strings.Contains(txt, "B: delivered; C: delivered") {
		t.Fatalf("list send: %s", txt)
	}
	txt, _, _ = a.call(t, "relay_send", map[string]any{"to": "all", "message": "everyone"})
	if strings.Contains(txt, "A:") || !strings.Contains(txt, "B: delivered") {
		t.Fatalf("broadcast: %s", txt)
	}
	txt, _, isErr = a.call(t, "relay_send", map[string]any{"to": "NOBODY", "message": "x"})
	if !isErr || !strings.HasPrefix(txt, "Not delivered: NOBODY: unknown id, not stored (check relay_sessions") || strings.Contains(txt, "did you mean") {
		t.Fatalf("unknown: %v %s", isErr, txt)
	}
	// A send that reached nobody is an error, with the ids it may have meant.
	txt, _, isErr = a.call(t, "relay_send", map[string]any{"to": "b", "message": "x"})
	if !isErr || !strings.Contains(txt, "b: unknown id, not stored (did you mean B? else check relay_sessions") {
		t.Fatalf("unknown b: %v %s", isErr, txt)
	}
	// Stored for one, unknown for the other: sent, and the unknown one named.
	txt, _, isErr = a.call(t, "relay_send", map[string]any{"to": "C,C-9", "message": "x"})
	if isErr || !strings.HasPrefix(txt, "Sent ") || !strings.Contains(txt, "C-9: unknown id, not stored (did you mean C? else") {
		t.Fatalf("half unknown: %v %s", isErr, txt)
	}
	_, _, isErr = a.call(t, "relay_send", map[string]any{"to": "*,B", "message": "x"})
	if !isErr {
		t.Fatal("* mixed with ids accepted")
	}

	waitFor(t, func() bool { _, u, _ := b.in.Counts(); return u == 3 })
	txt, sc, _ = b.call(t, "relay_receive", map[string]any{})
	msgs := sc["messages"].([]any)
	if len(msgs) != 3 || !strings.Contains(txt, "hello B") || !strings.Contains(txt, "thread=t1") || !strings.Contains(txt, "not instructions") {
		t.Fatalf("receive: %s", txt)
	}
	txt, _, _ = b.call(t, "relay_receive", map[string]any{})
	if !strings.HasPrefix(txt, "No unread messages") {
		t.Fatalf("second receive: %s", txt)
	}
	txt, _, _ = b.call(t, "relay_receive", map[string]any{"include_read": true, "count": 1})
	if !strings.Contains(txt, "everyone") || !strings.Contains(txt, "read before") {
		t.Fatalf("include_read: %s", txt)
	}
	// include_read with no match: nothing at all, not merely nothing unread.
	txt, _, _ = b.call(t, "relay_receive", map[string]any{"include_read": true, "from": "NOBODY"})
	if txt != "No messages, read or unread, matching from=NOBODY." {
		t.Fatalf("include_read, no match: %q", txt)
	}
	// The sender never gets its own broadcast.
	if _, u, _ := a.in.Counts(); u != 0 {
		t.Fatalf("A has %d unread", u)
	}

	txt, _, _ = a.call(t, "relay_peers", map[string]any{})
	if !strings.Contains(txt, "2 other session(s) online") || !strings.Contains(txt, "A (you)") {
		t.Fatalf("peers: %s", txt)
	}
	txt, sc, _ = a.call(t, "relay_status", map[string]any{})
	if sc["state"] != "connected" || !strings.Contains(txt, "connected as A") {
		t.Fatalf("status: %s", txt)
	}
	txt, _, _ = a.call(t, "relay_sessions", map[string]any{})
	if !strings.Contains(txt, "B online") {
		t.Fatalf("sessions: %s", txt)
	}
	txt, sc, _ = b.call(t, "relay_clear_history", map[string]any{})
	if sc["cleared_local"].(float64) != 3 || !strings.Contains(txt, "Unread kept: 0") {
		t.Fatalf("clear: %s", txt)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, "the condition", cond)
}

func TestLongMessagesTruncatedAndLargeSendTip(t *testing.T) {
	r := relaytest.New(t)
	a, b := newAgent(t, r.URL(), "A"), newAgent(t, r.URL(), "B")
	waitConnected(t, a, b)
	long := strings.Repeat("é", 3000) // 6000 bytes
	txt, _, _ := a.call(t, "relay_send", map[string]any{"to": "B", "message": long})
	if !strings.Contains(txt, "share a file path or commit") {
		t.Fatalf("no tip: %s", txt)
	}
	waitFor(t, func() bool { _, u, _ := b.in.Counts(); return u == 1 })
	txt, sc, _ := b.call(t, "relay_receive", map[string]any{})
	m := sc["messages"].([]any)[0].(map[string]any)
	if m["truncated"] != true || !strings.Contains(txt, "shows it whole") || len(txt) > ShowBytes+600 {
		t.Fatalf("not truncated (%d bytes): %.300s", len(txt), txt)
	}
	txt, _, _ = b.call(t, "relay_receive", map[string]any{"id": m["id"]})
	if !strings.Contains(txt, long) {
		t.Fatal("id= did not show the whole message")
	}
}

func TestWaitReturnsEarlyWithProgress(t *testing.T) {
	r := relaytest.New(t)
	a, b := newAgent(t, r.URL(), "A"), newAgent(t, r.URL(), "B")
	waitConnected(t, a, b)
	go func() {
		time.Sleep(300 * time.Millisecond)
		a.call(t, "relay_send", map[string]any{"to": "B", "message": "done"})
	}()
	start := time.Now()
	params := &mcp.CallToolParams{Name: "relay_receive", Arguments: map[string]any{"wait_seconds": 30}}
	params.SetProgressToken("tok")
	res, err := b.cs.CallTool(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	text := res.Content[0].(*mcp.TextContent).Text
	if el > 5*time.Second || !strings.Contains(text, "done") {
		t.Fatalf("after %v: %s", el, text)
	}
	t.Logf("woke %v after the wait began (message sent at 300ms)", el)

	// Nothing arrives: the wait ends at wait_seconds with a clear result.
	start = time.Now()
	txt, _, _ := b.call(t, "relay_receive", map[string]any{"wait_seconds": 1})
	if el := time.Since(start); el < time.Second || !strings.Contains(txt, "No unread messages") || !strings.Contains(txt, "waited") {
		t.Fatalf("after %v: %s", el, txt)
	}
	if _, _, isErr := b.call(t, "relay_receive", map[string]any{"wait_seconds": 301}); !isErr {
		t.Fatal("wait_seconds 301 accepted")
	}
}

func TestToolsAnswerAtOnceWhenRelayDown(t *testing.T) {
	r := relaytest.New(t)
	r.SetDown(true)
	a := newAgent(t, r.URL(), "A")
	start := time.Now()
	txt, sc, _ := a.call(t, "relay_send", map[string]any{"to": "B", "message": "later"})
	if !strings.Contains(txt, "Queued, relay offline") || sc["queued"] != true {
		t.Fatalf("send: %s", txt)
	}
	txt, _, _ = a.call(t, "relay_status", map[string]any{})
	if !strings.Contains(txt, "Queued outgoing: 1") || !strings.Contains(txt, "is relayd running") {
		t.Fatalf("status: %s", txt)
	}
	txt, _, _ = a.call(t, "relay_peers", map[string]any{})
	if !strings.Contains(txt, "last known") {
		t.Fatalf("peers: %s", txt)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("tools took %v with the relay down", el)
	}
}

func TestParseTo(t *testing.T) {
	for in, want := range map[string]string{"*": "*", "all": "*", "ALL": "*", "B": "B", " B , C,B ": "B,C", "@B": "B"} {
		got, err := ParseTo(in, "A")
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("ParseTo(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", ",", "a b", "../x", "*,B"} {
		if _, err := ParseTo(bad, "A"); err == nil {
			t.Errorf("ParseTo(%q) accepted", bad)
		}
	}
}

// checkSchemaGolden compares tool's schema, as an agent sees it, with
// testdata/<name>.json (rewritten with -update): a change to what the model
// reads must be deliberate.
func checkSchemaGolden(t *testing.T, tool *mcp.Tool) {
	t.Helper()
	b, _ := json.MarshalIndent(tool, "", "  ")
	b = append(b, '\n')
	path := filepath.Join("testdata", tool.Name+".json")
	if *update {
		os.WriteFile(path, b, 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, b) {
		t.Errorf("schema of %s changed; if deliberate, run go test ./relay-mcp/internal/tools -update\n got: %s", tool.Name, b)
	}
}
