package e2e

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/mcpserver"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/tools"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A test runs the MCP server an agent spawns, with mcpserver.Run and a
// Config, in its own process over pipes, against the real relay: the tools
// it lists are the profile's, relay_status says who it is once connected,
// and closing stdin ends Run.
func TestRunServesMCP(t *testing.T) {
	r := relaytest.Start(t)
	url := r.URL() + "/v1/ws" // a Config holds the URL as the flags leave it (link.ParseURL)
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	home := t.TempDir()
	done := make(chan error, 1)
	go func() {
		cfg := mcpserver.Config{ID: "RUN-1", Home: home, URL: url, Tools: "core", Structured: true}
		done <- mcpserver.Run(ctx, cfg, stdinR, stdoutW)
		stdoutW.Close()
	}()
	t.Cleanup(func() { // before home is removed, also when the test fails
		cancel()
		stdinW.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	})

	client := mcp.NewClient(&mcp.Implementation{Name: "run-test", Version: "0"}, nil)
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: stdoutR, Writer: stdinW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	for _, want := range []string{"relay_send", "relay_receive", "relay_status"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools %v lack %s", names, want)
		}
	}
	if slices.Contains(names, "relay_rename") {
		t.Errorf("the core profile lists relay_rename: %v", names)
	}
	var st tools.StatusOutput
	testkit.WaitFor(t, 10*time.Second, "relay_status to say connected", func() bool {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "relay_status"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(res.StructuredContent)
		json.Unmarshal(b, &st)
		return st.State == "connected"
	})
	if st.ID != "RUN-1" || st.RelayURL != url {
		t.Errorf("relay_status says %+v; the Config's id is RUN-1 and its relay %s", st, url)
	}

	cs.Close()
	stdinW.Close()
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Fatalf("Run after stdin closed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of stdin closing")
	}
}
