package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/relaytest"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/tools"
)

// A test runs the MCP server an agent spawns, with Run and a Config, over
// pipes: the tools it lists are the profile's, relay_status says who it is
// once connected, and closing stdin ends Run.
func TestRunServesMCP(t *testing.T) {
	r := relaytest.New(t)
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	home := t.TempDir()
	done := make(chan error, 1)
	go func() {
		cfg := Config{ID: "RUN-1", Home: home, URL: r.URL(), Tools: "core", Structured: true}
		done <- Run(ctx, cfg, stdinR, stdoutW)
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
	if st.ID != "RUN-1" || st.RelayURL != r.URL() {
		t.Errorf("relay_status says %+v; the Config's id is RUN-1 and its relay %s", st, r.URL())
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

// Run refuses a Config it cannot serve, as the flags would.
func TestRunRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{ID: "bad id", Home: t.TempDir()},
		{ID: "OK-1"},
		{ID: "OK-1", Home: t.TempDir(), Tools: "most"},
	} {
		err := Run(context.Background(), cfg, strings.NewReader(""), io.Discard)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("Run(%+v) = %v, want a *ConfigError (relay-mcp exits with its usage code)", cfg, err)
		}
	}
}
