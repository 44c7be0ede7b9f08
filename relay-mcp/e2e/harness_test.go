// Package e2e tests relay-mcp end to end, as agents and people use it: the
// real relay-mcp binary (built once, in TestMain) spawned over stdio by the
// go-sdk MCP client exactly as an agent spawns it, or run as a command,
// against the real relay started in this process by package relaytest (as
// a process of its own where a test kills it with SIGKILL).
//
// The tests of the real agent CLIs (Claude Code, Codex, Gemini CLI,
// installed from npm into the repository's e2e/ folder) run them offline
// against scripted stand-ins for their model APIs (package scriptedapi):
// every request a CLI sends is what its model would read, and the tests
// assert on those requests. The CLIs come from `npm ci --prefix e2e` at the
// repository root; without them those tests skip and say so.
//
// This is a module of its own (it requires relayd, which relay-mcp does
// not): `GOWORK=off go test ./...` here runs it alone.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/scriptedapi"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var bins struct {
	dir, relayMCP, relayd string
	root                  string // the repository root
}

func TestMain(m *testing.M) {
	relaytest.Main() // the test binary re-executed as relayd serves here
	// A relay a test stops stays stopped: no relay-mcp spawned by these
	// tests starts a relayd of its own (TestE2EAutostartOneRelaydForMany
	// turns it back on).
	os.Setenv("RELAY_AUTOSTART", "off")
	dir, err := os.MkdirTemp("", "relay-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	if wd, err := os.Getwd(); err == nil {
		bins.root = filepath.Dir(filepath.Dir(wd)) // relay-mcp/e2e → repository root
	}
	bins.relayMCP = filepath.Join(dir, "relay-mcp")
	bins.relayd = filepath.Join(dir, "relayd") // for what only the binary shows: its version, autostart, its commands
	// Both binaries are stamped as `make build` stamps them (see
	// TestVersionStamped).
	for _, b := range []struct{ out, pkg string }{
		{bins.relayMCP, "github.com/claude-relay/claude-relay/relay-mcp"},
		{bins.relayd, "github.com/claude-relay/claude-relay/relayd"},
	} {
		if out, err := exec.Command("go", "build", "-ldflags", testStamp, "-o", b.out, b.pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// claudeBin is the Claude Code CLI installed by `npm ci --prefix e2e`; the
// test skips without it.
func claudeBin(t testing.TB) string { return npmBin(t, "claude", "Claude Code CLI") }

// npmBin is the program name installed by `npm ci --prefix e2e` (title
// names it in the skip message); the test skips without it.
func npmBin(t testing.TB, name, title string) string {
	t.Helper()
	p := filepath.Join(bins.root, "e2e", "node_modules", ".bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("the %s is not installed (%s missing): run `npm ci --prefix e2e` at the repository root to run the real-CLI tests", title, p)
	}
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// ---- the scripted model API

func startAPI(t testing.TB) *scriptedapi.Anthropic {
	t.Helper()
	a, err := scriptedapi.NewAnthropic()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// ---- Claude Code

// ccSession is one Claude Code session's setup: its own HOME (Claude Code
// writes ~/.claude there), a relay id, the MCP config that spawns
// relay-mcp, and its API prefix at the scripted API.
type ccSession struct {
	t         testing.TB
	id        string // relay id, also the API prefix
	home      string // HOME for Claude Code
	relayHome string // RELAY_HOME shared by the sessions of one "machine"
	cwd       string
	mcpConfig string
	api       *scriptedapi.Anthropic
	relayURL  string
	env       []string // extra environment (relay-mcp inherits it)
	allowed   []string // --allowedTools
	extra     []string // more claude arguments
}

// newCC prepares a session: relayHome is shared by sessions that run on one
// machine (registry, inboxes).
func newCC(t testing.TB, api *scriptedapi.Anthropic, r *relaytest.Relay, id, relayHome string) *ccSession {
	t.Helper()
	claudeBin(t)
	c := &ccSession{t: t, id: id, home: t.TempDir(), relayHome: relayHome, cwd: t.TempDir(), api: api, relayURL: r.URL(), allowed: relayTools}
	cfg := map[string]any{"mcpServers": map[string]any{"relay": map[string]any{
		"type": "stdio", "command": bins.relayMCP, "args": []string{},
		"env": map[string]string{"RELAY_URL": c.relayURL, "RELAY_HOME": relayHome, "CLAUDE_RELAY_SESSION_ID": id, "RELAY_LOG_LEVEL": "debug"},
	}}}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	c.mcpConfig = filepath.Join(c.home, "mcp.json")
	if err := os.WriteFile(c.mcpConfig, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// relayTools are the tool names Claude Code gives relay-mcp's tools.
var relayTools = []string{"mcp__relay__relay_send", "mcp__relay__relay_receive", "mcp__relay__relay_peers", "mcp__relay__relay_status", "mcp__relay__relay_sessions", "mcp__relay__relay_clear_history"}

func (c *ccSession) environ() []string {
	env := []string{
		"HOME=" + c.home,
		"PATH=" + os.Getenv("PATH"),
		"TMPDIR=" + os.TempDir(),
		"ANTHROPIC_BASE_URL=" + c.api.URL(c.id),
		"ANTHROPIC_API_KEY=sk-scripted",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"DISABLE_AUTOUPDATER=1",
		"ENABLE_TOOL_SEARCH=false",
		"RELAY_HOME=" + c.relayHome,
		"CLAUDE_RELAY_SESSION_ID=" + c.id,
		"RELAY_URL=" + c.relayURL,
		"RELAY_AUTOSTART=off", // a relay a test stops stays stopped
	}
	return append(env, c.env...)
}

func (c *ccSession) args(extra ...string) []string {
	a := []string{"--mcp-config", c.mcpConfig, "--strict-mcp-config", "--allowedTools", strings.Join(c.allowed, ",")}
	a = append(a, c.extra...)
	return append(a, extra...)
}

// runP runs one headless turn, `claude -p PROMPT`, and returns its stdout.
func (c *ccSession) runP(prompt string, within time.Duration) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, claudeBin(c.t), c.args("-p", prompt)...)
	cmd.Env = c.environ()
	cmd.Dir = c.cwd
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("claude -p (%s): %v\nstdout: %s\nstderr: %s", c.id, err, tail(stdout.String(), 2000), tail(stderr.String(), 2000))
	}
	return stdout.String()
}

// ccStream is a long-lived stream-json Claude Code session: user turns as
// JSON lines on stdin (kept open), events as JSON lines on stdout.
type ccStream struct {
	c       *ccSession
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stderr  *testkit.Buffer
	done    chan struct{}
	mu      sync.Mutex
	lines   []map[string]any
	changed chan struct{}
}

func (c *ccSession) startStream() *ccStream {
	c.t.Helper()
	cmd := exec.Command(claudeBin(c.t), c.args("-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose")...)
	cmd.Env = c.environ()
	cmd.Dir = c.cwd
	s := &ccStream{c: c, cmd: cmd, stderr: &testkit.Buffer{}, done: make(chan struct{}), changed: make(chan struct{})}
	var err error
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		c.t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			s.mu.Lock()
			s.lines = append(s.lines, m)
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		}
	}()
	go func() { cmd.Wait(); close(s.done) }()
	c.t.Cleanup(func() { s.stop() })
	return s
}

// say sends one user turn.
func (s *ccStream) say(text string) {
	s.c.t.Helper()
	b, _ := json.Marshal(map[string]any{"type": "user", "message": map[string]any{"role": "user", "content": text}})
	if _, err := s.stdin.Write(append(b, '\n')); err != nil {
		s.c.t.Fatalf("write to claude (%s): %v", s.c.id, err)
	}
}

// results counts the finished turns so far.
func (s *ccStream) results() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if l["type"] == "result" {
			n++
		}
	}
	return n
}

// waitResults waits until n turns have finished.
func (s *ccStream) waitResults(n int, within time.Duration) {
	s.c.t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if s.results() >= n {
			return
		}
		select {
		case <-ch:
		case <-s.done:
			s.c.t.Fatalf("claude (%s) exited before turn %d ended: %s", s.c.id, n, tail(s.stderr.String(), 2000))
		case <-deadline.C:
			s.c.t.Fatalf("claude (%s): turn %d did not end within %v", s.c.id, n, within)
		}
	}
}

// stop closes stdin (Claude Code ends the session) and waits, killing it
// after a grace period.
func (s *ccStream) stop() {
	s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// ---- scripts

// toolThenText is a script: the first request of each turn calls the tool
// with the input; the request carrying its result is answered with text.
func toolThenText(name string, input any, text string) scriptedapi.Script {
	return func(r *scriptedapi.Request) scriptedapi.Reply {
		if m := r.LastUser(); m != nil {
			for _, b := range m.Content {
				if b.Type == "tool_result" {
					return scriptedapi.Reply{Text: text}
				}
			}
		}
		return scriptedapi.Reply{ToolUses: []scriptedapi.ToolUse{{Name: name, Input: input}}}
	}
}

// ---- relay-mcp over stdio, driven by the go-sdk client

type agentProc struct {
	id   string
	cs   *mcp.ClientSession
	cmd  *exec.Cmd
	logs *testkit.Buffer
}

// spawnAgent starts relay-mcp as id over stdio with the go-sdk client, as
// an agent spawns it, with structured content on (the tests read it).
func spawnAgent(t testing.TB, relayURL, id, home string, extraEnv ...string) *agentProc {
	t.Helper()
	return spawnAgentIn(t, "", relayURL, id, home, extraEnv...)
}

// spawnAgentIn is spawnAgent with relay-mcp's working directory dir ("" for
// the test's).
func spawnAgentIn(t testing.TB, dir, relayURL, id, home string, extraEnv ...string) *agentProc {
	t.Helper()
	return spawnAgentWith(t, nil, dir, relayURL, id, home, extraEnv...)
}

// spawnAgentWith is spawnAgentIn with the MCP client's options (its
// notification handlers).
func spawnAgentWith(t testing.TB, opts *mcp.ClientOptions, dir, relayURL, id, home string, extraEnv ...string) *agentProc {
	t.Helper()
	cmd := exec.Command(bins.relayMCP)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RELAY_HOME="+home, "RELAY_URL="+relayURL, "CLAUDE_RELAY_SESSION_ID="+id, "RELAY_LOG_LEVEL=debug", "RELAY_STRUCTURED_CONTENT=1")
	cmd.Env = append(cmd.Env, extraEnv...)
	logs := &testkit.Buffer{}
	cmd.Stderr = logs
	c := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 5 * time.Second}, nil)
	if err != nil {
		t.Fatalf("spawn relay-mcp %s: %v\n%s", id, err, logs.String())
	}
	a := &agentProc{id: id, cs: cs, cmd: cmd, logs: logs}
	t.Cleanup(func() {
		cs.Close()
		if t.Failed() {
			t.Logf("relay-mcp %s log:\n%s", id, tail(logs.String(), 4000))
		}
	})
	return a
}

// connectedAgents spawns relay-mcp as each of ids, all with RELAY_HOME
// home (one machine), and waits until each is connected.
func connectedAgents(t testing.TB, relayURL, home string, ids ...string) []*agentProc {
	t.Helper()
	var all []*agentProc
	for _, id := range ids {
		all = append(all, spawnAgent(t, relayURL, id, home))
	}
	for _, a := range all {
		a.waitState(t, "connected")
	}
	return all
}

// connectedPair is connectedAgents for two.
func connectedPair(t testing.TB, relayURL, home, idA, idB string) (*agentProc, *agentProc) {
	t.Helper()
	all := connectedAgents(t, relayURL, home, idA, idB)
	return all[0], all[1]
}

// call calls a tool and returns its text ("ERROR: " first for an error)
// and its structured content.
func (a *agentProc) call(t testing.TB, name string, args map[string]any) (string, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := a.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s %s: %v", a.id, name, err)
	}
	var text string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text += tc.Text
		}
	}
	var sc map[string]any
	b, _ := json.Marshal(res.StructuredContent)
	json.Unmarshal(b, &sc)
	if res.IsError {
		text = "ERROR: " + text
	}
	return text, sc
}

// text is call's text alone.
func (a *agentProc) text(t testing.TB, name string, args map[string]any) string {
	t.Helper()
	text, _ := a.call(t, name, args)
	return text
}

// result is call with the error mark apart: the text without "ERROR: "
// and whether the tool answered with an error.
func (a *agentProc) result(t testing.TB, name string, args map[string]any) (string, map[string]any, bool) {
	t.Helper()
	text, sc := a.call(t, name, args)
	text, isErr := strings.CutPrefix(text, "ERROR: ")
	return text, sc, isErr
}

// waitUnread polls relay_status until the session holds n unread messages.
func (a *agentProc) waitUnread(t testing.TB, n int) {
	t.Helper()
	testkit.WaitFor(t, 20*time.Second, fmt.Sprintf("%s to hold %d unread", a.id, n), func() bool {
		_, sc := a.call(t, "relay_status", nil)
		u, _ := sc["unread"].(float64)
		return int(u) == n
	})
}

// waitState polls relay_status until the link's state is state.
func (a *agentProc) waitState(t testing.TB, state string) {
	t.Helper()
	testkit.WaitFor(t, 20*time.Second, a.id+" "+state, func() bool {
		_, sc := a.call(t, "relay_status", nil)
		return sc["state"] == state
	})
}

// bodies receives until n messages arrived (or the wait runs out) and
// returns their bodies in order.
func (a *agentProc) bodies(t testing.TB, n int) []string {
	t.Helper()
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		_, sc := a.call(t, "relay_receive", map[string]any{"wait_seconds": 5, "count": 200})
		ms, _ := sc["messages"].([]any)
		for _, m := range ms {
			got = append(got, m.(map[string]any)["body"].(string))
		}
	}
	return got
}

// exactlyOnce receives until want arrived, then a while longer, and fails
// unless every body in want came exactly once and nothing else came.
func exactlyOnce(t testing.TB, a *agentProc, want ...string) {
	t.Helper()
	got := a.bodies(t, len(want))
	time.Sleep(500 * time.Millisecond) // the test is that nothing more comes: a duplicate would show now
	_, sc := a.call(t, "relay_receive", nil)
	for _, m := range sc["messages"].([]any) {
		got = append(got, m.(map[string]any)["body"].(string))
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%s received %q, want each of %q exactly once", a.id, got, want)
	}
}

// relayCLI runs a relay-mcp command (send, receive …) and returns its
// combined output.
func relayCLI(t testing.TB, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bins.relayMCP, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("relay-mcp %v: %v\n%s", args, err, out)
	}
	return string(out)
}
