package main

// End-to-end tests: the real relay-mcp binary, spawned over stdio through
// the go-sdk CommandTransport exactly as an agent spawns it, talking to the
// real relayd binary on 127.0.0.1. Both are built once in TestMain.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/proc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var bins struct {
	dir, relayMCP, relayd string
	relaydErr             string
}

func TestMain(m *testing.M) {
	// A relay a test stops stays stopped: no relay-mcp here starts one of
	// its own (TestE2EAutostart turns it back on).
	os.Setenv("RELAY_AUTOSTART", "off")
	dir, err := os.MkdirTemp("", "relay-mcp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	bins.relayMCP = filepath.Join(dir, "relay-mcp")
	bins.relayd = filepath.Join(dir, "relayd")
	// Both binaries are stamped as `make build` stamps them (see
	// TestVersionStamped).
	if out, err := exec.Command("go", "build", "-ldflags", testStamp, "-o", bins.relayMCP, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build relay-mcp: %v\n%s", err, out)
		os.Exit(1)
	}
	if out, err := exec.Command("go", "build", "-ldflags", testStamp, "-o", bins.relayd, "github.com/claude-relay/claude-relay/relayd").CombinedOutput(); err != nil {
		bins.relaydErr = fmt.Sprintf("relayd does not build: %v\n%s", err, out)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ---- relayd

type relayProc struct {
	cmd  *exec.Cmd
	addr string
	data string
	logs *testkit.Buffer
	done chan struct{}
}

var addrRE = regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)

// startRelay runs relayd on addr ("127.0.0.1:0" for any port) with its store
// in dataDir ("" for the memory store) and waits for /healthz.
func startRelay(t *testing.T, addr, dataDir string) *relayProc {
	t.Helper()
	if bins.relaydErr != "" {
		t.Skip(bins.relaydErr)
	}
	args := []string{"--listen", addr}
	if dataDir == "" {
		args = append(args, "--store", "memory")
	} else {
		args = append(args, "--data-dir", dataDir)
	}
	cmd := exec.Command(bins.relayd, args...)
	cmd.Env = append(os.Environ(), "RELAY_HOME="+t.TempDir())
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &relayProc{cmd: cmd, data: dataDir, logs: &testkit.Buffer{}, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			r.logs.Write([]byte(line + "\n"))
			if m := addrRE.FindStringSubmatch(line); m != nil && strings.Contains(line, "relayd listening") {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { cmd.Wait(); close(r.done) }()
	t.Cleanup(func() { r.kill(); t.Logf("relayd log:\n%s", tail(r.logs.String(), 3000)) })
	select {
	case r.addr = <-found:
	case <-r.done:
		t.Fatalf("relayd exited: %s", r.logs.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("relayd did not say where it listens: %s", r.logs.String())
	}
	poll(t, "relayd /healthz", 10*time.Second, func() bool {
		resp, err := http.Get("http://" + r.addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return r
}

func (r *relayProc) url() string { return "ws://" + r.addr }

func (r *relayProc) kill() {
	r.cmd.Process.Kill()
	<-r.done
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func poll(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, within, what, cond)
}

// ---- relay-mcp over stdio

type agentProc struct {
	id   string
	cs   *mcp.ClientSession
	cmd  *exec.Cmd
	logs *testkit.Buffer
}

func spawnAgent(t *testing.T, relayURL, id, home string, extraEnv ...string) *agentProc {
	t.Helper()
	return spawnAgentIn(t, "", relayURL, id, home, extraEnv...)
}

// spawnAgentIn is spawnAgent with relay-mcp's working directory dir ("" for
// the test's).
func spawnAgentIn(t *testing.T, dir, relayURL, id, home string, extraEnv ...string) *agentProc {
	t.Helper()
	cmd := exec.Command(bins.relayMCP)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RELAY_HOME="+home, "RELAY_URL="+relayURL, "CLAUDE_RELAY_SESSION_ID="+id, "RELAY_LOG_LEVEL=debug", "RELAY_STRUCTURED_CONTENT=1")
	cmd.Env = append(cmd.Env, extraEnv...)
	logs := &testkit.Buffer{}
	cmd.Stderr = logs
	c := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 5 * time.Second}, nil)
	if err != nil {
		t.Fatalf("spawn relay-mcp: %v\n%s", err, logs.String())
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

func (a *agentProc) call(t *testing.T, name string, args map[string]any) (string, map[string]any) {
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

func (a *agentProc) waitState(t *testing.T, state string) {
	t.Helper()
	poll(t, a.id+" "+state, 20*time.Second, func() bool {
		_, sc := a.call(t, "relay_status", nil)
		return sc["state"] == state
	})
}

// bodies receives until n messages arrived (or the wait runs out) and
// returns their bodies in order.
func (a *agentProc) bodies(t *testing.T, n int) []string {
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

// ---- tests

func TestE2ETwoAgentsDirectListBroadcast(t *testing.T) {
	r := startRelay(t, "127.0.0.1:0", "")
	home := t.TempDir()
	a := spawnAgent(t, r.url(), "CC-1", home)
	b := spawnAgent(t, r.url(), "CC-2", home)
	c := spawnAgent(t, r.url(), "CODEX", home)
	for _, x := range []*agentProc{a, b, c} {
		x.waitState(t, "connected")
	}
	txt, _ := a.call(t, "relay_send", map[string]any{"to": "CC-2", "message": "direct"})
	if !strings.Contains(txt, "CC-2: delivered") {
		t.Fatalf("direct: %s", txt)
	}
	txt, _ = a.call(t, "relay_send", map[string]any{"to": "CC-2,CODEX", "message": "list"})
	if !strings.Contains(txt, "CC-2: delivered; CODEX: delivered") {
		t.Fatalf("list: %s", txt)
	}
	txt, _ = a.call(t, "relay_send", map[string]any{"to": "all", "message": "broadcast"})
	if !strings.Contains(txt, "delivered") || strings.Contains(txt, "CC-1:") {
		t.Fatalf("broadcast: %s", txt)
	}
	if got := strings.Join(b.bodies(t, 3), ","); got != "direct,list,broadcast" {
		t.Fatalf("CC-2 got %s", got)
	}
	if got := strings.Join(c.bodies(t, 2), ","); got != "list,broadcast" {
		t.Fatalf("CODEX got %s", got)
	}
	if txt, _ := a.call(t, "relay_receive", nil); !strings.HasPrefix(txt, "No unread") {
		t.Fatalf("sender got its own broadcast: %s", txt)
	}
	// Reply in a thread, answered with reply_to.
	_, sc := a.call(t, "relay_send", map[string]any{"to": "CC-2", "message": "q?", "thread": "auth"})
	txt, _ = b.call(t, "relay_receive", map[string]any{"wait_seconds": 10})
	if !strings.Contains(txt, "thread=auth") {
		t.Fatalf("thread lost: %s", txt)
	}
	b.call(t, "relay_send", map[string]any{"to": "CC-1", "message": "a!", "reply_to": sc["id"], "thread": "auth"})
	txt, _ = a.call(t, "relay_receive", map[string]any{"wait_seconds": 10})
	if !strings.Contains(txt, "reply_to="+sc["id"].(string)) {
		t.Fatalf("reply_to lost: %s", txt)
	}
	txt, _ = a.call(t, "relay_peers", nil)
	if !strings.Contains(txt, "2 other session(s) online") {
		t.Fatalf("peers: %s", txt)
	}
	txt, _ = a.call(t, "relay_sessions", nil)
	if !strings.Contains(txt, "CODEX") || !strings.Contains(txt, "3 online") {
		t.Fatalf("sessions: %s", txt)
	}
}

func TestE2ERelayRestartNothingLostOrDuplicated(t *testing.T) {
	data := t.TempDir()
	r := startRelay(t, "127.0.0.1:0", data)
	addr := r.addr
	home := t.TempDir()
	a := spawnAgent(t, r.url(), "A", home)
	b := spawnAgent(t, r.url(), "B", home)
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	var want []string
	for i := 1; i <= 3; i++ {
		body := fmt.Sprintf("m%d", i)
		want = append(want, body)
		a.call(t, "relay_send", map[string]any{"to": "B", "message": body})
	}
	if got := b.bodies(t, 2); len(got) < 2 { // B reads some before the crash
		t.Fatalf("before restart: %v", got)
	} else {
		want = want[len(got):]
	}
	r.kill() // kill -9 mid-conversation
	a.waitState(t, "reconnecting")
	for i := 4; i <= 6; i++ { // sent while the relay is down: queued locally
		body := fmt.Sprintf("m%d", i)
		want = append(want, body)
		txt, _ := a.call(t, "relay_send", map[string]any{"to": "B", "message": body})
		if !strings.Contains(txt, "Queued") {
			t.Fatalf("offline send: %s", txt)
		}
	}
	r2 := startRelay(t, addr, data)
	_ = r2
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	a.call(t, "relay_send", map[string]any{"to": "B", "message": "m7"})
	want = append(want, "m7")
	got := b.bodies(t, len(want))
	time.Sleep(300 * time.Millisecond)
	if txt, _ := b.call(t, "relay_receive", nil); !strings.HasPrefix(txt, "No unread") {
		got = append(got, "EXTRA:"+txt)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after restart got %v, want %v", got, want)
	}
	_, sc := a.call(t, "relay_status", nil)
	if sc["queued_outgoing"].(float64) != 0 || sc["reconnects"].(float64) < 1 {
		t.Fatalf("status: %v", sc)
	}
}

func TestE2ETakeoverWithoutFlapping(t *testing.T) {
	r := startRelay(t, "127.0.0.1:0", "")
	old := spawnAgent(t, r.url(), "SAME", t.TempDir())
	old.waitState(t, "connected")
	newer := spawnAgent(t, r.url(), "SAME", t.TempDir())
	newer.waitState(t, "connected")
	old.waitState(t, "stopped")
	txt, _ := old.call(t, "relay_status", nil)
	if !strings.Contains(txt, "replaced") {
		t.Fatalf("old status: %s", txt)
	}
	time.Sleep(1500 * time.Millisecond) // several backoff periods: the old one must stay away
	_, sc := newer.call(t, "relay_status", nil)
	if sc["state"] != "connected" || sc["reconnects"].(float64) != 0 {
		t.Fatalf("newer flapped: %v", sc)
	}
	if txt, _ := old.call(t, "relay_send", map[string]any{"to": "X", "message": "x"}); !strings.HasPrefix(txt, "ERROR") {
		t.Fatalf("replaced session sent: %s", txt)
	}
}

// Exit within 10 s once the parent is gone, even while stdin stays open.
func TestE2EWatchdogParentGone(t *testing.T) {
	r := startRelay(t, "127.0.0.1:0", "")
	home := t.TempDir()
	pr, pw, _ := os.Pipe() // stdin that stays open: only the parent check can fire
	defer pw.Close()
	pidFile := filepath.Join(t.TempDir(), "pid")
	// An explicit redirect: sh gives a background job /dev/null as stdin otherwise.
	parent := exec.Command("sh", "-c", `exec 3<&0; "$BIN" <&3 & echo $! > "$PIDFILE"; wait`)
	parent.Env = append(os.Environ(), "BIN="+bins.relayMCP, "PIDFILE="+pidFile, "RELAY_HOME="+home, "RELAY_URL="+r.url(), "CLAUDE_RELAY_SESSION_ID=ORPHAN")
	parent.Stdin = pr
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	var pid int
	poll(t, "child pid", 5*time.Second, func() bool {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	watcher := spawnAgent(t, r.url(), "WATCHER", t.TempDir())
	poll(t, "ORPHAN online", 10*time.Second, func() bool {
		txt, _ := watcher.call(t, "relay_peers", nil)
		return strings.Contains(txt, "ORPHAN")
	})
	parent.Process.Kill()
	parent.Wait()
	start := time.Now()
	poll(t, "orphan exit", 10*time.Second, func() bool { return !processAlive(pid) })
	t.Logf("relay-mcp exited %v after its parent was killed", time.Since(start).Round(time.Millisecond))
	poll(t, "ORPHAN gone from peers", 5*time.Second, func() bool {
		txt, _ := watcher.call(t, "relay_peers", nil)
		return !strings.Contains(txt, "ORPHAN")
	})
	data, _ := os.ReadFile(filepath.Join(home, "sessions", "registry.json"))
	if !regexp.MustCompile(`"ORPHAN"[^}]*"online": false`).Match(data) {
		t.Fatalf("registry not marked offline: %s", data)
	}
}

func processAlive(pid int) bool {
	if !proc.Alive(pid) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc here: trust the probe
	}
	f := strings.Fields(string(b))
	return len(f) < 3 || f[2] != "Z"
}

// Closing stdin (the agent quitting) ends relay-mcp promptly.
func TestE2EStdinCloseExits(t *testing.T) {
	r := startRelay(t, "127.0.0.1:0", "")
	a := spawnAgent(t, r.url(), "QUIT", t.TempDir())
	a.waitState(t, "connected")
	start := time.Now()
	a.cs.Close() // closes stdin, waits for exit
	if el := time.Since(start); el > 5*time.Second || a.cmd.ProcessState == nil || !a.cmd.ProcessState.Exited() {
		t.Fatalf("exit after stdin close took %v (state %v)", el, a.cmd.ProcessState)
	} else {
		t.Logf("exited %v after stdin closed", el.Round(time.Millisecond))
	}
}

// Measurements for the budgets: spawn → tools/list, idle RSS,
// send → receive latency through two relay-mcp processes.
func TestE2EMeasure(t *testing.T) {
	r := startRelay(t, "127.0.0.1:0", "")
	home := t.TempDir()
	var spawns []time.Duration
	for i := range 5 {
		start := time.Now()
		a := spawnAgent(t, r.url(), fmt.Sprintf("M-%d", i), home)
		if _, err := a.cs.ListTools(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		spawns = append(spawns, time.Since(start))
		a.cs.Close()
	}
	a := spawnAgent(t, r.url(), "LA", home)
	b := spawnAgent(t, r.url(), "LB", home)
	a.waitState(t, "connected")
	b.waitState(t, "connected")

	var lat []time.Duration
	for i := range 40 {
		done := make(chan time.Duration, 1)
		go func() {
			_, sc := b.call(t, "relay_receive", map[string]any{"wait_seconds": 10})
			if ms, _ := sc["messages"].([]any); len(ms) == 1 {
				done <- 0
				return
			}
			done <- -1
		}()
		time.Sleep(20 * time.Millisecond) // let the wait begin
		start := time.Now()
		a.call(t, "relay_send", map[string]any{"to": "LB", "message": fmt.Sprintf("ping %d", i)})
		if <-done < 0 {
			t.Fatal("message not received")
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(spawns, func(i, j int) bool { return spawns[i] < spawns[j] })
	time.Sleep(500 * time.Millisecond)
	rss := rssKiB(b.cmd.Process.Pid)
	t.Logf("spawn → tools/list answered: median %v (min %v, max %v)", spawns[len(spawns)/2].Round(time.Millisecond/10), spawns[0].Round(time.Millisecond/10), spawns[len(spawns)-1].Round(time.Millisecond/10))
	t.Logf("send → wait_seconds receive returned, through two relay-mcp: p50 %v p90 %v max %v", lat[len(lat)/2].Round(time.Microsecond*10), lat[len(lat)*9/10].Round(time.Microsecond*10), lat[len(lat)-1].Round(time.Microsecond*10))
	t.Logf("idle relay-mcp RSS: %d KiB", rss)
}

func rssKiB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}
