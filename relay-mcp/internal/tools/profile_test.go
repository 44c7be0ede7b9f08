package tools

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

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
		checkSchemaGolden(t, tool)
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
