package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// listTools lists the tools of a profile as an agent sees them.
func listTools(t testing.TB, profile string) []*mcp.Tool {
	t.Helper()
	ctx := context.Background()
	s := mcp.NewServer(&mcp.Implementation{Name: "claude-relay", Version: "test"}, &mcp.ServerOptions{Instructions: Instructions})
	RegisterProfile(s, profile, &Deps{Started: time.Now()})
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cs.Close(); ss.Wait() }()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Tools
}

// The full profile adds exactly the conversation tools, with schemas kept
// in testdata like the core ones; the sizes are what docs/agents.md quotes.
func TestToolProfiles(t *testing.T) {
	names := func(ts []*mcp.Tool) []string {
		var out []string
		for _, tool := range ts {
			out = append(out, tool.Name)
		}
		slices.Sort(out)
		return out
	}
	size := func(ts []*mcp.Tool) int {
		b, _ := json.Marshal(map[string]any{"tools": ts})
		return len(b)
	}
	core, full := listTools(t, ProfileCore), listTools(t, ProfileFull)
	eq := func(got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Fatalf("tools = %v, want %v", got, want)
		}
	}
	eq(names(core), []string{"relay_clear_history", "relay_peers", "relay_receive", "relay_send", "relay_sessions", "relay_status"})
	eq(names(full), []string{"relay_clear_history", "relay_peers", "relay_receive", "relay_rename", "relay_send", "relay_sessions", "relay_set_status", "relay_status", "relay_thread"})
	for _, tool := range full {
		if slices.Contains(names(core), tool.Name) {
			continue // TestToolSchemasGolden keeps those
		}
		b, _ := json.MarshalIndent(tool, "", "  ")
		b = append(b, '\n')
		path := filepath.Join("testdata", tool.Name+".json")
		if *update {
			os.WriteFile(path, b, 0o644)
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if !bytes.Equal(want, b) {
			t.Errorf("schema of %s changed; if deliberate, run go test ./relay-mcp/internal/tools -update\n got: %s", tool.Name, b)
		}
	}
	t.Logf("tools/list result: core %d tools %d bytes; full %d tools %d bytes", len(core), size(core), len(full), size(full))
	for _, p := range []string{"", "core", "FULL", "all"} {
		if _, err := ParseProfile(p); err != nil {
			t.Errorf("ParseProfile(%q): %v", p, err)
		}
	}
	if _, err := ParseProfile("everything"); err == nil {
		t.Error("ParseProfile(everything) = nil error")
	}
}

// relay_receive with reply_to waits for the answer to one message: other
// mail does not end the wait, and a wait that runs out says so.
func TestReceiveWaitForReply(t *testing.T) {
	r := relaytest.New(t)
	a, b := newAgent(t, r.URL(), "A"), newAgent(t, r.URL(), "B")
	waitConnected(t, a, b)
	_, sc, _ := a.call(t, "relay_send", map[string]any{"to": "B", "message": "please review", "thread": "rev"})
	task := sc["id"].(string)

	got := make(chan map[string]any, 1)
	go func() {
		res, err := a.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "relay_receive", Arguments: map[string]any{"reply_to": task, "wait_seconds": 30}})
		if err != nil {
			got <- map[string]any{"err": err.Error()}
			return
		}
		var m map[string]any
		bs, _ := json.Marshal(res.StructuredContent)
		json.Unmarshal(bs, &m)
		got <- m
	}()
	time.Sleep(100 * time.Millisecond)
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "unrelated"})
	select {
	case m := <-got:
		t.Fatalf("the wait ended on unrelated mail: %v", m)
	case <-time.After(300 * time.Millisecond):
	}
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "LGTM", "reply_to": task, "thread": "rev"})
	select {
	case m := <-got:
		ms, _ := m["messages"].([]any)
		if len(ms) != 1 || ms[0].(map[string]any)["body"] != "LGTM" || m["timed_out"] == true {
			t.Fatalf("wait result = %v", m)
		}
		if m["unread_left"].(float64) != 1 {
			t.Fatalf("unread_left = %v, want the unrelated message still unread", m["unread_left"])
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the reply did not end the wait")
	}
	// The reply, read already, still answers a later wait for it at once.
	if _, sc, _ := a.call(t, "relay_receive", map[string]any{"reply_to": task, "wait_seconds": 30}); len(sc["messages"].([]any)) != 1 || sc["timed_out"] == true {
		t.Fatalf("second wait for the same reply: %v", sc)
	}
	// A thread filter without waiting.
	txt, sc, _ := a.call(t, "relay_receive", map[string]any{"thread": "rev", "include_read": true})
	if ms := sc["messages"].([]any); len(ms) != 1 {
		t.Fatalf("thread filter: %s", txt)
	}
	// thread=* groups unread mail by thread, threads in order of first arrival.
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "docs 1", "thread": "docs"})
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "loose"})
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "rev 2", "thread": "rev"})
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "docs 2", "thread": "docs"})
	waitFor(t, func() bool { _, u, _ := a.in.Counts(); return u == 5 })
	_, sc, _ = a.call(t, "relay_receive", map[string]any{"thread": "*"})
	var order []string
	for _, m := range sc["messages"].([]any) {
		order = append(order, m.(map[string]any)["body"].(string))
	}
	if want := []string{"docs 1", "docs 2", "rev 2", "unrelated", "loose"}; !slices.Equal(order, want) {
		t.Fatalf("grouped = %v, want %v", order, want)
	}
	// Nothing comes: a clear timeout.
	txt, sc, _ = a.call(t, "relay_receive", map[string]any{"reply_to": "0193a1b2-0000-7000-8000-000000000001", "wait_seconds": 1})
	if sc["timed_out"] != true || !bytes.Contains([]byte(txt), []byte("timed out")) || !bytes.Contains([]byte(txt), []byte("reply_to=0193a1b2")) {
		t.Fatalf("timeout result: %s %v", txt, sc)
	}
}

// BenchmarkReceiveWake measures how long after a message reaches the link
// a waiting relay_receive returns it (the budget: 50 ms).
func BenchmarkReceiveWake(b *testing.B) {
	r := relaytest.New(b)
	a := newAgent(b, r.URL(), "A")
	for a.l.Status().State != link.StateConnected {
		time.Sleep(5 * time.Millisecond)
	}
	var total time.Duration
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		done := make(chan time.Time, 1)
		go func() {
			a.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "relay_receive", Arguments: map[string]any{"wait_seconds": 10}})
			done <- time.Now()
		}()
		time.Sleep(20 * time.Millisecond) // let it start waiting
		sent := time.Now()
		r.Inject("B", "A", "ping")
		total += (<-done).Sub(sent)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-to-wake")
}
