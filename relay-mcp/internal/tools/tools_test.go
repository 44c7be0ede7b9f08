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
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

type agent struct {
	cs *mcp.ClientSession
	l  *link.Link
	in *inbox.Inbox
}

// newAgent wires the tools for id to a link on relayURL and an in-memory
// MCP client with opts (nil for none). The tests of what a user sees run
// relay-mcp as agents spawn it, against the real relay (module
// relay-mcp/e2e); these are the tools' own logic.
func newAgent(t testing.TB, relayURL, id string, opts *mcp.ClientOptions) *agent {
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
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, opts)
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

// The schemas of the core tools, as an agent sees them, are the golden ones
// (TestToolProfiles keeps the full profile's others).
func TestToolSchemasGolden(t *testing.T) {
	core := listTools(t, ProfileCore)
	total := 0
	for _, tool := range core {
		compact, _ := json.Marshal(tool)
		total += len(compact)
		checkSchemaGolden(t, tool)
	}
	if len(core) != 6 {
		t.Fatalf("%d tools", len(core))
	}
	t.Logf("tools/list: %d tools, %d bytes of JSON", len(core), total)
}

// A waiting relay_receive tells the client it is waiting (progress, when
// asked for) and returns as soon as mail comes, not at wait_seconds; with
// nothing coming it ends at wait_seconds and says so.
func TestWaitReturnsEarlyWithProgress(t *testing.T) {
	progress := make(chan string, 100)
	b := newAgent(t, "ws://"+testkit.RefusedAddr(t)+"/v1/ws", "B", // offline: the mail is what the test adds to the inbox
		&mcp.ClientOptions{
			ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) { progress <- r.Params.Message },
		})
	params := &mcp.CallToolParams{Name: "relay_receive", Arguments: map[string]any{"wait_seconds": 30}}
	params.SetProgressToken("tok")
	type answer struct {
		res *mcp.CallToolResult
		err error
	}
	got := make(chan answer, 1)
	start := time.Now()
	go func() {
		res, err := b.cs.CallTool(context.Background(), params)
		got <- answer{res, err}
	}()
	select {
	case msg := <-progress: // the wait has begun
		if !strings.Contains(msg, "waiting for relay mail") {
			t.Fatalf("progress %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no progress notification from a waiting relay_receive")
	}
	if _, err := b.in.Add(protocol.Message{Seq: 1, ID: "0193a1b2-0000-7000-8000-0000000000a1", From: "A", To: []string{"B"}, Body: "done", TS: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var ans answer
	select {
	case ans = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("a 30 s wait did not end when mail came")
	}
	if ans.err != nil {
		t.Fatal(ans.err)
	}
	if text := ans.res.Content[0].(*mcp.TextContent).Text; !strings.Contains(text, "done") {
		t.Fatalf("after %v: %s", time.Since(start), text)
	}

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
