package e2e

// The MCP tools end to end: two and three agents, a relay that dies and
// comes back, a takeover, and relay-mcp's own lifetime.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/proc"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

func TestE2ETwoAgentsDirectListBroadcast(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	all := connectedAgents(t, r.URL(), home, "CC-1", "CC-2", "CODEX")
	a, b, c := all[0], all[1], all[2]
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
	r := relaytest.StartProcess(t, "--data-dir", data)
	addr := r.Addr
	home := t.TempDir()
	a, b := connectedPair(t, r.URL(), home, "A", "B")
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
	r.Kill(t) // kill -9 mid-conversation
	a.waitState(t, "reconnecting")
	for i := 4; i <= 6; i++ { // sent while the relay is down: queued locally
		body := fmt.Sprintf("m%d", i)
		want = append(want, body)
		txt, _ := a.call(t, "relay_send", map[string]any{"to": "B", "message": body})
		if !strings.Contains(txt, "Queued") {
			t.Fatalf("offline send: %s", txt)
		}
	}
	r2 := relaytest.Start(t, "--listen", addr, "--data-dir", data)
	_ = r2
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	a.call(t, "relay_send", map[string]any{"to": "B", "message": "m7"})
	want = append(want, "m7")
	exactlyOnce(t, b, want...)
	_, sc := a.call(t, "relay_status", nil)
	if sc["queued_outgoing"].(float64) != 0 || sc["reconnects"].(float64) < 1 {
		t.Fatalf("status: %v", sc)
	}
}

func TestE2ETakeoverWithoutFlapping(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	old := spawnAgent(t, r.URL(), "SAME", t.TempDir())
	old.waitState(t, "connected")
	newer := spawnAgent(t, r.URL(), "SAME", t.TempDir())
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
	r := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	pr, pw, _ := os.Pipe() // stdin that stays open: only the parent check can fire
	defer pw.Close()
	pidFile := filepath.Join(t.TempDir(), "pid")
	// An explicit redirect: sh gives a background job /dev/null as stdin otherwise.
	parent := exec.Command("sh", "-c", `exec 3<&0; "$BIN" <&3 & echo $! > "$PIDFILE"; wait`)
	parent.Env = append(os.Environ(), "BIN="+bins.relayMCP, "PIDFILE="+pidFile, "RELAY_HOME="+home, "RELAY_URL="+r.URL(), "CLAUDE_RELAY_SESSION_ID=ORPHAN")
	parent.Stdin = pr
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	var pid int
	testkit.WaitFor(t, 5*time.Second, "child pid", func() bool {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	watcher := spawnAgent(t, r.URL(), "WATCHER", t.TempDir())
	testkit.WaitFor(t, 10*time.Second, "ORPHAN online", func() bool {
		txt, _ := watcher.call(t, "relay_peers", nil)
		return strings.Contains(txt, "ORPHAN")
	})
	parent.Process.Kill()
	parent.Wait()
	start := time.Now()
	testkit.WaitFor(t, 10*time.Second, "orphan exit", func() bool { return !processAlive(pid) })
	t.Logf("relay-mcp exited %v after its parent was killed", time.Since(start).Round(time.Millisecond))
	testkit.WaitFor(t, 5*time.Second, "ORPHAN gone from peers", func() bool {
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
	r := relaytest.Start(t, "--store", "memory")
	a := spawnAgent(t, r.URL(), "QUIT", t.TempDir())
	a.waitState(t, "connected")
	start := time.Now()
	a.cs.Close() // closes stdin, waits for exit
	if el := time.Since(start); el > 5*time.Second || a.cmd.ProcessState == nil || !a.cmd.ProcessState.Exited() {
		t.Fatalf("exit after stdin close took %v (state %v)", el, a.cmd.ProcessState)
	} else {
		t.Logf("exited %v after stdin closed", el.Round(time.Millisecond))
	}
}
