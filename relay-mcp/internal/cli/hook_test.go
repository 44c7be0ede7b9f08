package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/filelock"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/hook"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/registry"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/hooks")

var hookTS = time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)

// seedMail puts n messages from peers (and one from self, never shown) in
// id's inbox under home.
func seedMail(t *testing.T, home, id string, n int) *inbox.Inbox {
	t.Helper()
	b, err := inbox.Open(filepath.Join(home, "inbox", id), inbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	var ms []protocol.Message
	for i := 1; i <= n; i++ {
		from := "CC-1"
		if i%3 == 0 {
			from = "CODEX"
		}
		m := protocol.Message{Seq: uint64(i), ID: fmt.Sprintf("0193a1b2-0000-7000-8000-%012d", i), From: from, To: []string{id},
			Body: fmt.Sprintf("finding %d: the bug is in auth.go line %d", i, 40+i), TS: hookTS.Add(time.Duration(i) * time.Second)}
		if i == 2 {
			m.Thread, m.ReplyTo, m.To = "auth", "0193a1b2-0000-7000-8000-000000000001", []string{"*"}
		}
		ms = append(ms, m)
	}
	ms = append(ms, protocol.Message{Seq: uint64(n + 1), ID: "0193a1b2-0000-7000-8000-999999999999", From: id, To: []string{"*"}, Body: "my own broadcast", TS: hookTS})
	if _, err := b.Add(ms...); err != nil {
		t.Fatal(err)
	}
	return b
}

func unreadCount(t *testing.T, b *inbox.Inbox) int {
	t.Helper()
	n := 0
	for _, e := range b.List(inbox.Query{}) {
		if e.From != "CC-2" {
			n++
		}
	}
	return n
}

type hookStep struct {
	in     string   // testdata/hooks/IN.in.json, as Claude Code writes it
	args   []string // after "hook claude-code"
	golden string   // testdata/hooks/GOLDEN.out.json
	unread int      // unread peer mail left after the step
}

// The hooks answer recorded Claude Code inputs with golden outputs, and
// leave the inbox as the model saw it: messages shown whole are read,
// summarised ones are not.
func TestHookClaudeGolden(t *testing.T) {
	cases := []struct {
		name  string
		mail  int
		steps []hookStep
	}{
		{"session start, no mail", 0, []hookStep{{"session_start", []string{"SessionStart"}, "session_start_empty", 0}}},
		{"session start, mail", 2, []hookStep{{"session_start", []string{"SessionStart"}, "session_start_mail", 0}}},
		{"session start, relay unreachable", 2, []hookStep{{"session_start", []string{"SessionStart"}, "session_start_unreachable", 0}}},
		{"prompt, no mail", 0, []hookStep{{"user_prompt_submit", []string{"UserPromptSubmit"}, "empty", 0}}},
		{"prompt shows mail and marks it read", 2, []hookStep{
			{"user_prompt_submit", []string{"UserPromptSubmit"}, "user_prompt_two", 0},
			{"user_prompt_submit", []string{"UserPromptSubmit"}, "empty", 0},
		}},
		{"prompt summarises many, each prompt", 7, []hookStep{
			{"user_prompt_submit", []string{"UserPromptSubmit"}, "user_prompt_many", 7},
			{"user_prompt_submit", []string{"UserPromptSubmit"}, "user_prompt_many", 7},
		}},
		{"tool use summarises once", 7, []hookStep{
			{"post_tool_use", []string{"PostToolUse"}, "post_tool_use_many", 7},
			{"post_tool_use", []string{"PostToolUse"}, "empty", 7},
		}},
		{"tool use shows one", 1, []hookStep{
			{"post_tool_use", []string{"PostToolUse"}, "post_tool_use_one", 0},
			{"post_tool_use", []string{"PostToolUse"}, "empty", 0},
		}},
		{"stop notifies by default", 1, []hookStep{
			{"stop", []string{"Stop"}, "stop_notify", 1},
			{"user_prompt_submit", []string{"UserPromptSubmit"}, "user_prompt_one", 0},
			{"stop", []string{"Stop"}, "empty", 0},
		}},
		{"stop blocks once", 1, []hookStep{
			{"stop", []string{"--on-stop", "block", "Stop"}, "stop_block", 0},
			{"stop", []string{"--on-stop", "block", "Stop"}, "empty", 0},
		}},
		{"stop blocks once with a summary of many", 7, []hookStep{
			{"stop", []string{"--on-stop", "block", "Stop"}, "stop_block_many", 7},
			{"stop", []string{"--on-stop", "block", "Stop"}, "empty", 7},
			{"user_prompt_submit", []string{"UserPromptSubmit"}, "user_prompt_many", 7},
		}},
		{"stop already continuing does not block again", 1, []hookStep{
			{"stop_active", []string{"--on-stop", "block", "Stop"}, "stop_notify", 1},
		}},
		{"stop off", 1, []hookStep{{"stop", []string{"--on-stop", "off", "Stop"}, "empty", 1}}},
		{"event from the input", 1, []hookStep{{"post_tool_use", nil, "post_tool_use_one", 0}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv(EnvSessionID, "CC-2")
			t.Setenv(EnvClientID, "")
			var b *inbox.Inbox
			if tc.mail > 0 {
				b = seedMail(t, home, "CC-2", tc.mail)
			}
			// The session's server (this process stands in for it) has
			// synced with the relay, or failed to reach it.
			ls := hook.LinkState{PID: os.Getpid(), State: "connected", URL: "ws://127.0.0.1:9999/v1/ws", Synced: true}
			if strings.Contains(tc.name, "unreachable") {
				ls = hook.LinkState{PID: os.Getpid(), State: "reconnecting", URL: ls.URL, Error: "relay not reachable at ws://127.0.0.1:9999/v1/ws (connection refused) — is relayd running? start it with `relayd`"}
			}
			os.MkdirAll(filepath.Join(home, "inbox", "CC-2"), 0o700)
			if err := hook.WriteLinkState(filepath.Join(home, "inbox", "CC-2"), ls); err != nil {
				t.Fatal(err)
			}
			for i, st := range tc.steps {
				in, err := os.ReadFile(filepath.Join("testdata", "hooks", st.in+".in.json"))
				if err != nil {
					t.Fatal(err)
				}
				args := append([]string{"--home", home, "hook", "claude-code"}, st.args...)
				code, out, errOut := run(t, string(in), args...)
				if code != 0 {
					t.Fatalf("step %d: exit %d: %s", i, code, errOut)
				}
				checkGolden(t, st.golden, out)
				if b != nil {
					if got := unreadCount(t, b); got != st.unread {
						t.Errorf("step %d: %d unread after, want %d", i, got, st.unread)
					}
				}
			}
		})
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Fatalf("hook output is not JSON: %v\n%s", err, got)
	}
	pretty, _ := json.MarshalIndent(v, "", "  ")
	pretty = append(pretty, '\n')
	path := filepath.Join("testdata", "hooks", name+".out.json")
	if *update {
		if err := os.WriteFile(path, pretty, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(pretty, want) {
		t.Errorf("hook output differs from %s:\n got %s\nwant %s\n(run go test -update if this is deliberate)", path, pretty, want)
	}
}

// A locked inbox (a writer stuck holding it) makes the hook answer without
// mail after its bounded wait, never hang; the mail stays unread.
func TestHookLockedInboxAnswersEmpty(t *testing.T) {
	home := t.TempDir()
	t.Setenv(EnvSessionID, "CC-2")
	b := seedMail(t, home, "CC-2", 2)
	l, err := filelock.Acquire(filepath.Join(home, "inbox", "CC-2", "messages.lock"))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := os.ReadFile(filepath.Join("testdata", "hooks", "user_prompt_submit.in.json"))
	done := make(chan struct{})
	var code int
	var out, errOut string
	start := time.Now()
	go func() {
		defer close(done)
		code, out, errOut = run(t, string(in), "--home", home, "hook", "claude-code", "UserPromptSubmit")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the hook hung on a locked inbox")
	}
	t.Logf("hook answered a locked inbox in %s", time.Since(start))
	l.Release()
	if code != 0 || strings.TrimSpace(out) != "{}" || !strings.Contains(errOut, "locked") {
		t.Fatalf("exit %d out %q err %q", code, out, errOut)
	}
	if got := unreadCount(t, b); got != 2 {
		t.Fatalf("%d unread after a locked answer, want 2", got)
	}
}

// Without an id in the environment the hook finds the one live session
// registered for its working directory; with none it answers nothing.
func TestHookFindsSessionByCwd(t *testing.T) {
	home := t.TempDir()
	t.Setenv(EnvSessionID, "")
	t.Setenv(EnvClientID, "")
	seedMail(t, home, "CC-2", 1)
	in := `{"hook_event_name":"PostToolUse","cwd":"/src/app","tool_name":"Bash"}`
	code, out, _ := run(t, in, "--home", home, "hook", "claude-code", "PostToolUse")
	if code != 0 || strings.TrimSpace(out) != "{}" {
		t.Fatalf("no registry: exit %d out %q", code, out)
	}
	host, _ := os.Hostname()
	reg := registry.Open(home, nil)
	if err := reg.Register(registry.Session{ID: "CC-2", Host: host, PID: os.Getpid(), Cwd: "/src/app", Online: true}); err != nil {
		t.Fatal(err)
	}
	reg.Register(registry.Session{ID: "CC-9", Host: host, PID: os.Getpid(), Cwd: "/elsewhere", Online: true})
	code, out, errOut := run(t, in, "--home", home, "hook", "claude-code", "PostToolUse")
	if code != 0 || !strings.Contains(out, "finding 1") {
		t.Fatalf("exit %d out %q err %q", code, out, errOut)
	}
}

func TestHookBadUsage(t *testing.T) {
	t.Setenv(EnvSessionID, "CC-2")
	if code, _, errOut := run(t, "{}", "--home", t.TempDir(), "hook", "claude-code", "Bogus"); code != ExitError || !strings.Contains(errOut, "UserPromptSubmit") {
		t.Fatalf("bad event: exit %d %q", code, errOut)
	}
	if code, _, errOut := run(t, "{}", "--home", t.TempDir(), "hook", "claude-code", "--on-stop", "maybe", "Stop"); code != ExitError || !strings.Contains(errOut, "block, notify or off") {
		t.Fatalf("bad on-stop: exit %d %q", code, errOut)
	}
	// Input that is not JSON: the turn goes on, nothing is added.
	if code, out, _ := run(t, "not json", "--home", t.TempDir(), "hook", "claude-code", "UserPromptSubmit"); code != 0 || strings.TrimSpace(out) != "{}" {
		t.Fatalf("bad input: exit %d %q", code, out)
	}
}

func TestHookCodex(t *testing.T) {
	home := t.TempDir()
	t.Setenv(EnvSessionID, "CC-2")
	b := seedMail(t, home, "CC-2", 2)
	note := `{"type":"agent-turn-complete","thread-id":"t1","turn-id":"1","cwd":"/src/app","input-messages":["fix it"],"last-assistant-message":"done"}`
	code, out, errOut := run(t, "", "--home", home, "hook", "codex", "--desktop=false", note)
	if code != 0 || !strings.Contains(out, "2 unread message(s) from CC-1 (2)") {
		t.Fatalf("exit %d out %q err %q", code, out, errOut)
	}
	if _, out, _ = run(t, "", "--home", home, "hook", "codex", "--desktop=false", note); out != "" {
		t.Fatalf("told twice: %q", out)
	}
	if unreadCount(t, b) != 2 {
		t.Fatal("codex notify marked mail read; the model has not seen it")
	}
}
