package e2e

import (
	"bytes"
	"context"
	"github.com/claude-relay/claude-relay/internal/testkit"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Helpers shared by the Codex and Gemini CLI tests.

// runAgent runs an agent CLI headless (one turn) with exactly env, in dir,
// and returns its output; it fails the test if the CLI fails or outlives
// within.
func runAgent(t *testing.T, within time.Duration, env []string, dir, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env, cmd.Dir = env, dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, tail(out.String(), 3000))
	}
	return out.String()
}

// watcher is a `relay-mcp watch` process.
type watcher struct {
	cmd    *exec.Cmd
	log    *testkit.Buffer
	done   chan error    // its exit, once
	exited chan struct{} // closed once it has exited
}

// runWatch starts cmd, a `relay-mcp watch`, with its output in the
// watcher's log; the test's cleanup kills it and waits for it, and shows
// the log if the test failed.
func runWatch(t *testing.T, cmd *exec.Cmd) *watcher {
	t.Helper()
	w := &watcher{cmd: cmd, log: &testkit.Buffer{}, done: make(chan error, 1), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = w.log, w.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.done <- cmd.Wait(); close(w.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-w.exited
		if t.Failed() {
			t.Logf("relay-mcp watch log:\n%s", tail(w.log.String(), 4000))
		}
	})
	return w
}

// startWatch runs `relay-mcp watch` for id with the command that wakes
// the agent (env and dir are the agent's), and waits until the relay lists
// the watcher, asking through peer.
func startWatch(t *testing.T, peer *agentProc, relayURL string, env []string, dir, id, command string) *watcher {
	t.Helper()
	cmd := exec.Command(bins.relayMCP, "watch", "--for", id, "--debounce", "200ms", "--max-runs", "1", "--run-timeout", "90s", "--exec", command)
	cmd.Env = append(env, "RELAY_URL="+relayURL)
	cmd.Dir = dir
	w := runWatch(t, cmd)
	testkit.WaitFor(t, 15*time.Second, "the watcher online", func() bool {
		return strings.Contains(peer.text(t, "relay_peers", nil), "watch-"+id)
	})
	return w
}

// finished waits for the watcher's one run to end and its exit.
func (w *watcher) finished(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("relay-mcp watch: %v\n%s", err, tail(w.log.String(), 3000))
		}
	case <-time.After(within):
		t.Fatalf("relay-mcp watch did not finish its one run:\n%s", tail(w.log.String(), 3000))
	}
}
