package e2e

import (
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2ETypeScriptClient runs e2e/check.mjs: the official TypeScript MCP
// client (@modelcontextprotocol/sdk) spawns relay-mcp over stdio as Claude
// Code does, and two sessions exchange a message through relayd.
func TestE2ETypeScriptClient(t *testing.T) {
	dir, _ := filepath.Abs(filepath.Join(bins.root, "e2e"))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk")); err != nil {
		t.Skipf("e2e/node_modules is missing: run `npm ci --prefix e2e` to enable the TypeScript client check")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the TypeScript client check needs Node.js 18+")
	}
	r := relaytest.Start(t, "--store", "memory")
	cmd := exec.Command(node, "check.mjs", bins.relayMCP, r.URL())
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"ok":true`) {
		t.Fatalf("check.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out[strings.LastIndex(string(out), "{"):])))
}
