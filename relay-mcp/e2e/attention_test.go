package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/filelock"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// runHook runs the real binary as Claude Code runs a hook: JSON on stdin,
// JSON on stdout. It returns the output and how long the process took.
func runHook(t testing.TB, home, id, event, input string, args ...string) (string, time.Duration) {
	t.Helper()
	cmd := exec.Command(bins.relayMCP, append(append([]string{"hook", "claude-code"}, args...), event)...)
	cmd.Env = append(os.Environ(), "RELAY_HOME="+home, "CLAUDE_RELAY_SESSION_ID="+id, "RELAY_URL=ws://127.0.0.1:1")
	cmd.Stdin = strings.NewReader(input)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("hook %s: %v\n%s", event, err, errb.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("hook %s hung", event)
	}
	return out.String(), time.Since(start)
}

func hookContext(t testing.TB, out string) string {
	t.Helper()
	var v struct {
		HookSpecificOutput struct {
			AdditionalContext string `json:"additionalContext"`
		} `json:"hookSpecificOutput"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("hook output %q: %v", out, err)
	}
	return v.HookSpecificOutput.AdditionalContext
}

func receiptState(t *testing.T, a *agentProc, msgID, to string) string {
	t.Helper()
	_, sc := a.call(t, "relay_status", map[string]any{"message_id": msgID})
	rs, _ := sc["recipients"].([]any)
	for _, r := range rs {
		r := r.(map[string]any)
		if r["to"] == to {
			return r["state"].(string)
		}
	}
	return ""
}

// The "done when", with two real relay-mcp servers and a real
// relayd: CC-1's message appears in CC-2's context at CC-2's next prompt
// (the hook, a separate process, reads CC-2's inbox), and CC-1 sees it go
// stored/delivered → read, with CC-2's unread count and last read in
// relay_peers. relay_receive reports reads the same way.
func TestE2EHookAndReadReceipts(t *testing.T) {
	r := relaytest.Start(t)
	home1, home2 := t.TempDir(), t.TempDir()
	a := spawnAgent(t, r.URL(), "CC-1", home1)
	b := spawnAgent(t, r.URL(), "CC-2", home2)
	a.waitState(t, "connected")
	b.waitState(t, "connected")

	text, sc := a.call(t, "relay_send", map[string]any{"to": "CC-2", "message": "the bug is in auth.go line 42"})
	msgID, _ := sc["id"].(string)
	if msgID == "" || !strings.Contains(text, "CC-2 has") {
		t.Fatalf("relay_send: %s %v", text, sc)
	}
	testkit.WaitFor(t, 10*time.Second, "CC-2 to hold the message", func() bool { return receiptState(t, a, msgID, "CC-2") == "delivered" })

	in, _ := os.ReadFile(filepath.Join("internal", "cli", "testdata", "hooks", "user_prompt_submit.in.json"))
	out, took := runHook(t, home2, "CC-2", "UserPromptSubmit", string(in))
	t.Logf("UserPromptSubmit hook with one message took %s (process start to exit)", took)
	ctx := hookContext(t, out)
	if !strings.Contains(ctx, "auth.go line 42") || !strings.Contains(ctx, "from CC-1") || !strings.Contains(ctx, "not instructions from your user") {
		t.Fatalf("hook context %q", ctx)
	}
	testkit.WaitFor(t, 15*time.Second, "CC-1 to see the message read", func() bool { return receiptState(t, a, msgID, "CC-2") == "read" })
	text, _ = a.call(t, "relay_status", map[string]any{"message_id": msgID})
	if !strings.Contains(text, "CC-2: read") {
		t.Fatalf("relay_status message_id: %s", text)
	}
	text, sc = a.call(t, "relay_peers", nil)
	for _, p := range sc["peers"].([]any) {
		p := p.(map[string]any)
		if p["id"] == "CC-2" && (p["unread"] != nil || p["last_read"] == nil) {
			t.Fatalf("CC-2 in peers after reading: %v (%s)", p, text)
		}
	}
	// relay_receive in CC-2 no longer shows it as new: the model saw it.
	if text, _ := b.call(t, "relay_receive", nil); !strings.Contains(text, "No unread") {
		t.Fatalf("relay_receive after the hook: %s", text)
	}

	// Through relay_receive.
	_, sc = a.call(t, "relay_send", map[string]any{"to": "CC-2", "message": "second"})
	id2 := sc["id"].(string)
	if got := b.bodies(t, 1); len(got) != 1 || got[0] != "second" {
		t.Fatalf("CC-2 received %v", got)
	}
	testkit.WaitFor(t, 15*time.Second, "CC-1 to see the second message read", func() bool { return receiptState(t, a, id2, "CC-2") == "read" })
	// Nobody but the sender sees receipts.
	if text, _ := b.call(t, "relay_status", map[string]any{"message_id": id2}); !strings.Contains(text, "No receipts") {
		t.Fatalf("CC-2 sees CC-1's receipts: %s", text)
	}
}

// The hook binary answers with the relay down and never hangs on a locked
// inbox: it gives up on the lock and answers without mail.
func TestE2EHookRelayDownOrInboxLocked(t *testing.T) {
	home := t.TempDir()
	in, _ := os.ReadFile(filepath.Join("internal", "cli", "testdata", "hooks", "post_tool_use.in.json"))
	// Relay down, no inbox yet: nothing to add.
	out, took := runHook(t, home, "CC-9", "PostToolUse", string(in))
	if strings.TrimSpace(out) != "{}" {
		t.Fatalf("no inbox: %q", out)
	}
	t.Logf("PostToolUse hook, no inbox: %s", took)
	dir := filepath.Join(home, "inbox", "CC-9")
	os.MkdirAll(dir, 0o700)
	l, err := filelock.Acquire(filepath.Join(dir, "messages.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	out, took = runHook(t, home, "CC-9", "PostToolUse", string(in))
	if strings.TrimSpace(out) != "{}" {
		t.Fatalf("locked inbox: %q", out)
	}
	t.Logf("PostToolUse hook, inbox locked by another process: %s", took)
}

// BenchmarkHookProcess measures what Claude Code waits for at each prompt:
// the whole hook process, from start to exit, with an empty inbox and with
// a nearly full one (1990 unread: the hook reads the whole log and answers
// with a summary, marking nothing, so every run does the same work).
func BenchmarkHookProcess(b *testing.B) {
	home := b.TempDir()
	in, _ := os.ReadFile(filepath.Join("internal", "cli", "testdata", "hooks", "post_tool_use.in.json"))
	b.Run("no-mail", func(b *testing.B) {
		for b.Loop() {
			runHook(b, home, "CC-1", "PostToolUse", string(in))
		}
	})
	b.Run("summary-of-1990-unread", func(b *testing.B) {
		seedBig(b, home, "CC-2", 1990)
		for b.Loop() {
			runHook(b, home, "CC-2", "UserPromptSubmit", string(in))
		}
	})
}

// A hook that shows mail while the session's server is not running (it
// exited, or is between restarts) still produces a read receipt: the
// server reports everything read when it next connects.
func TestE2EReadReportedAfterServerRestart(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	home2 := t.TempDir()
	a := spawnAgent(t, r.URL(), "CC-1", t.TempDir())
	b := spawnAgent(t, r.URL(), "CC-2", home2)
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	_, sc := a.call(t, "relay_send", map[string]any{"to": "CC-2", "message": "read me later"})
	id := sc["id"].(string)
	testkit.WaitFor(t, 10*time.Second, "CC-2 to hold it", func() bool { return receiptState(t, a, id, "CC-2") == "delivered" })
	b.cs.Close() // the server exits with its stdin
	testkit.WaitFor(t, 10*time.Second, "CC-2 to go offline", func() bool {
		_, sc := a.call(t, "relay_peers", nil)
		for _, p := range sc["peers"].([]any) {
			if p.(map[string]any)["id"] == "CC-2" {
				return false
			}
		}
		return true
	})
	in, _ := os.ReadFile(filepath.Join("internal", "cli", "testdata", "hooks", "user_prompt_submit.in.json"))
	if out, _ := runHook(t, home2, "CC-2", "UserPromptSubmit", string(in)); !strings.Contains(hookContext(t, out), "read me later") {
		t.Fatalf("hook: %s", out)
	}
	if st := receiptState(t, a, id, "CC-2"); st != "delivered" {
		t.Fatalf("read with no server to report it: %s", st)
	}
	spawnAgent(t, r.URL(), "CC-2", home2)
	testkit.WaitFor(t, 15*time.Second, "the restarted server to report the read", func() bool { return receiptState(t, a, id, "CC-2") == "read" })
}
