package e2e

// End-to-end tests of conversations and wake-ups, with the real binaries: a
// coordinator hands a task to an idle agent, `relay-mcp watch` wakes it by
// running a stand-in agent command, the answer comes back in the same
// thread to the waiting coordinator, and the thread survives restarts of
// relayd and relay-mcp; status lines seen by peers; a rename with mail in
// flight.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/registry"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/wake"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// standIn is the scripted stand-in for `codex exec resume …`: it reads its
// mail with relay-mcp receive, "does the work" and answers the task in its
// thread with relay-mcp send --thread --reply-to, as an agent would with
// relay_receive and relay_send.
const standIn = `#!/bin/sh
set -e
mail=$("$RELAY_MCP" receive --id "$RELAY_WATCH_ID" --json)
field() { printf '%s\n' "$mail" | sed -n "s/^    \"$1\": \"\([^\"]*\)\".*/\1/p" | head -1; }
id=$(field id); from=$(field from); thread=$(field thread)
echo "stand-in: woke for $RELAY_WATCH_COUNT message(s); task $id from $from in thread $thread" >&2
[ -n "$id" ] || { echo "stand-in: no mail" >&2; exit 9; }
"$RELAY_MCP" send --as "$RELAY_WATCH_ID" --thread "$thread" --reply-to "$id" "$from" "done: all 42 tests pass"
echo "$RELAY_WATCH_ID $RELAY_WATCH_COUNT" >> "$WAKE_LOG"
`

func TestE2EHandoffWakeReplyThread(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in agent is a shell script")
	}
	data := t.TempDir()
	r := relaytest.Start(t, "--data-dir", data)
	coordHome, codexHome := t.TempDir(), t.TempDir()
	env := []string{"RELAY_URL=" + r.URL(), "RELAY_HOME=" + codexHome}

	// CODEX was here earlier and is idle now: the relay knows it.
	if code, _, errs := runCLI(t, env, "receive", "--id", "CODEX"); code != 0 {
		t.Fatalf("receive as CODEX: %d %s", code, errs)
	}
	script := filepath.Join(t.TempDir(), "codex-stand-in.sh")
	if err := os.WriteFile(script, []byte(standIn), 0o755); err != nil {
		t.Fatal(err)
	}
	wakeLog := filepath.Join(t.TempDir(), "wakes.log")
	watch := exec.Command(bins.relayMCP, "watch", "--for", "CODEX", "--exec", script, "--debounce", "300ms", "--max-runs", "1")
	watch.Env = append(os.Environ(), append(env, "RELAY_MCP="+bins.relayMCP, "WAKE_LOG="+wakeLog)...)
	w := runWatch(t, watch)
	watchLog, watchDone := w.log, w.done
	testkit.WaitFor(t, 20*time.Second, "the watcher to subscribe", func() bool {
		return strings.Contains(watchLog.String(), "the relay announces mail for CODEX")
	})

	coord := spawnAgent(t, r.URL(), "COORD", coordHome, "RELAY_TOOLS=full")
	coord.waitState(t, "connected")
	txt, sc := coord.call(t, "relay_send", map[string]any{"to": "CODEX", "message": "please run the test suite of repo app", "thread": "task-42"})
	if !strings.Contains(txt, "CODEX: queued") {
		t.Fatalf("handoff: %s", txt)
	}
	task := sc["id"].(string)

	// The coordinator waits, with a timeout, for the answer to its task.
	txt, sc = coord.call(t, "relay_receive", map[string]any{"reply_to": task, "wait_seconds": 60})
	ms, _ := sc["messages"].([]any)
	if len(ms) != 1 {
		t.Fatalf("no reply: %s\nwatch log:\n%s", txt, watchLog.String())
	}
	reply := ms[0].(map[string]any)
	if reply["from"] != "CODEX" || reply["thread"] != "task-42" || reply["reply_to"] != task || reply["body"] != "done: all 42 tests pass" {
		t.Fatalf("reply = %v", reply)
	}

	// The watcher ran the agent once, recorded its exit, and stopped (--max-runs 1).
	select {
	case err := <-watchDone:
		if err != nil {
			t.Fatalf("watch exited with %v:\n%s", err, watchLog.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not exit after its run")
	}
	if b, _ := os.ReadFile(wakeLog); strings.TrimSpace(string(b)) != "CODEX 1" {
		t.Fatalf("wake log %q, want one run for one message", b)
	}
	st, err := wake.ReadState(filepath.Join(codexHome, "watch", "CODEX.json"))
	if err != nil || st.Runs != 1 || st.Last == nil || st.Last.ExitCode != 0 || st.Last.Count != 1 {
		t.Fatalf("watch state = %+v %+v (%v)", st, st.Last, err)
	}

	// The conversation, in order, from the relay's history.
	wantThread := []string{"COORD: please run the test suite of repo app", "CODEX: done: all 42 tests pass"}
	thread := func(a *agentProc) []string {
		t.Helper()
		txt, sc := a.call(t, "relay_thread", map[string]any{"thread": "task-42"})
		var got []string
		ms, _ := sc["messages"].([]any)
		for _, m := range ms {
			m := m.(map[string]any)
			got = append(got, fmt.Sprint(m["from"], ": ", m["body"]))
		}
		if sc["source"] != "relay" {
			t.Fatalf("relay_thread answered from %v: %s", sc["source"], txt)
		}
		return got
	}
	if got := thread(coord); !slices.Equal(got, wantThread) {
		t.Fatalf("thread = %q, want %q", got, wantThread)
	}

	// After relayd and relay-mcp restart, the thread is still there.
	coord.cs.Close()
	addr := r.Addr
	r.Stop()
	relaytest.Start(t, "--listen", addr, "--data-dir", data)
	coord2 := spawnAgent(t, "ws://"+addr, "COORD", coordHome, "RELAY_TOOLS=full")
	coord2.waitState(t, "connected")
	if got := thread(coord2); !slices.Equal(got, wantThread) {
		t.Fatalf("thread after restarts = %q, want %q", got, wantThread)
	}
	// The answer, read before the restart, still answers a wait for it.
	if _, sc := coord2.call(t, "relay_receive", map[string]any{"reply_to": task, "wait_seconds": 30}); len(sc["messages"].([]any)) != 1 {
		t.Fatalf("wait for a reply read earlier: %v", sc)
	}
	// A wait that nothing answers ends with a clear timeout.
	_, sc = coord2.call(t, "relay_send", map[string]any{"to": "CODEX", "message": "and the docs?", "thread": "task-42"})
	txt, sc = coord2.call(t, "relay_receive", map[string]any{"reply_to": sc["id"], "wait_seconds": 1})
	if sc["timed_out"] != true || !strings.Contains(txt, "timed out") {
		t.Fatalf("timeout: %s %v", txt, sc)
	}
}

// A status line set with relay_set_status is what peers see in relay_peers,
// and it survives the setter's reconnect.
func TestE2EStatusVisibleToPeers(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	coord := spawnAgent(t, r.URL(), "COORD", home)
	codex := spawnAgent(t, r.URL(), "CODEX", home, "RELAY_TOOLS=full")
	coord.waitState(t, "connected")
	codex.waitState(t, "connected")
	if txt, _ := codex.call(t, "relay_set_status", map[string]any{"status": "auth refactor in repo api"}); !strings.Contains(txt, "Status set") {
		t.Fatalf("set status: %s", txt)
	}
	peerStatus := func() string {
		_, sc := coord.call(t, "relay_peers", nil)
		for _, p := range sc["peers"].([]any) {
			p := p.(map[string]any)
			if p["id"] == "CODEX" {
				s, _ := p["status"].(string)
				return s
			}
		}
		return "(offline)"
	}
	if s := peerStatus(); s != "auth refactor in repo api" {
		t.Fatalf("coordinator sees CODEX status %q", s)
	}
	if txt, _ := coord.call(t, "relay_peers", nil); !strings.Contains(txt, `status="auth refactor in repo api"`) {
		t.Fatalf("relay_peers text: %s", txt)
	}
	if txt, sc := codex.call(t, "relay_status", nil); sc["status"] != "auth refactor in repo api" || !strings.Contains(txt, "auth refactor") {
		t.Fatalf("own status: %s", txt)
	}
	// Bad input is refused with the fix.
	if txt, _ := codex.call(t, "relay_set_status", map[string]any{"status": "two\nlines"}); !strings.Contains(txt, "one line") {
		t.Fatalf("two lines: %s", txt)
	}
	// The core profile does not offer it.
	if _, err := coord.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "relay_set_status", Arguments: map[string]any{"status": "x"}}); err == nil || !strings.Contains(err.Error(), "unknown tool") {
		t.Fatalf("core profile offers relay_set_status: %v", err)
	}
}

// relay_rename with mail in flight: every message sent to the old id is
// read exactly once, by the renamed session or by the session that comes
// back as the old id; mail to the new id reaches the renamed session only.
func TestE2ERenameWithMailInFlight(t *testing.T) {
	data := t.TempDir()
	r := relaytest.Start(t, "--data-dir", data)
	home, bHome := t.TempDir(), t.TempDir()
	a := spawnAgent(t, r.URL(), "A", home, "RELAY_TOOLS=full")
	b := spawnAgent(t, r.URL(), "B", bHome)
	a.waitState(t, "connected")
	b.waitState(t, "connected")

	// Refused: an id that is online, a bad id.
	if txt, _ := a.call(t, "relay_rename", map[string]any{"id": "B"}); !strings.Contains(txt, "B is online") {
		t.Fatalf("rename onto B: %s", txt)
	}
	if txt, _ := a.call(t, "relay_rename", map[string]any{"id": "a b"}); !strings.Contains(txt, "Not renamed") {
		t.Fatalf("bad id: %s", txt)
	}

	b.call(t, "relay_send", map[string]any{"to": "A", "message": "before-1"})
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "before-2"})
	// B keeps sending to A while A renames.
	var mu sync.Mutex
	var sent []string
	var tries atomic.Int32 // sends attempted, refused ones too
	stop := make(chan struct{})
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			body := fmt.Sprintf("flight-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			res, err := b.cs.CallTool(ctx, &mcp.CallToolParams{Name: "relay_send", Arguments: map[string]any{"to": "A", "message": body}})
			cancel()
			tries.Add(1)
			if err == nil && !res.IsError {
				mu.Lock()
				sent = append(sent, body)
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond) // a sender that keeps sending while the rename happens, not a flood
		}
	}()
	testkit.WaitFor(t, 20*time.Second, "the sender to have sent", func() bool { return tries.Load() > 0 })
	txt, sc := a.call(t, "relay_rename", map[string]any{"id": "A2"})
	if !strings.Contains(txt, "now A2") {
		t.Fatalf("rename: %s", txt)
	}
	atRename := tries.Load()
	testkit.WaitFor(t, 20*time.Second, "sends after the rename", func() bool { return tries.Load() >= atRename+3 })
	close(stop)
	<-senderDone
	mu.Lock()
	want := append([]string{"before-1", "before-2"}, sent...)
	mu.Unlock()
	t.Logf("rename: %s (%v); %d messages sent to A during it", txt, sc["moved"], len(sent))

	if _, sc := a.call(t, "relay_status", nil); sc["id"] != "A2" || sc["state"] != "connected" {
		t.Fatalf("status after rename: %v", sc)
	}
	// This machine's registry follows: A2 online, A offline.
	ls, err := registry.Open(home, nil).List()
	if err != nil {
		t.Fatal(err)
	}
	online := map[string]bool{}
	for _, x := range ls {
		online[x.ID] = x.Online
	}
	if !online["A2"] || online["A"] {
		t.Fatalf("registry after rename: %+v", ls)
	}
	readAll := func(ag *agentProc) []string {
		var got []string
		for {
			_, sc := ag.call(t, "relay_receive", map[string]any{"count": 200, "wait_seconds": 1})
			ms, _ := sc["messages"].([]any)
			if len(ms) == 0 {
				return got
			}
			for _, m := range ms {
				got = append(got, m.(map[string]any)["body"].(string))
			}
		}
	}
	renamed := readAll(a)
	if txt, _ := b.call(t, "relay_send", map[string]any{"to": "A2", "message": "to the new id"}); !strings.Contains(txt, "A2: delivered") {
		t.Fatalf("send to A2: %s", txt)
	}
	if txt, _ := b.call(t, "relay_send", map[string]any{"to": "A", "message": "after"}); !strings.Contains(txt, "A: queued") {
		t.Fatalf("send to the old id after the rename: %s", txt)
	}
	want = append(want, "after")
	if got := readAll(a); !slices.Equal(got, []string{"to the new id"}) {
		t.Fatalf("the renamed session got %v, want only the mail for A2", got)
	}
	// A restarted session lands back on its own id and reads what waited for it.
	a.cs.Close()
	testkit.WaitFor(t, 15*time.Second, "the renamed session to leave the registry", func() bool {
		ls, _ := registry.Open(home, nil).List()
		for _, x := range ls {
			if x.ID == "A2" {
				return !x.Online
			}
		}
		return false
	})
	back := spawnAgent(t, r.URL(), "A", home, "RELAY_TOOLS=full")
	back.waitState(t, "connected")
	if _, sc := back.call(t, "relay_status", nil); sc["id"] != "A" {
		t.Fatalf("restarted session is %v, want A", sc["id"])
	}
	returned := readAll(back)
	if slices.Contains(returned, "to the new id") {
		t.Fatalf("mail for A2 reached A: %v", returned)
	}
	all := append(renamed, returned...)
	slices.Sort(all)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Fatalf("read %v (renamed %v, back as A %v), want each of %v exactly once", all, renamed, returned, want)
	}
}

// The watcher outlives a relay restart: it reconnects, watches again, and
// mail stored after the restart still wakes the command.
func TestE2EWatchAcrossRelayRestart(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the wake command is sh")
	}
	data := t.TempDir()
	r := relaytest.Start(t, "--data-dir", data)
	home := t.TempDir()
	env := []string{"RELAY_URL=" + r.URL(), "RELAY_HOME=" + home}
	ran := filepath.Join(t.TempDir(), "ran")
	watch := exec.Command(bins.relayMCP, "watch", "--for", "IDLE", "--exec", `echo "$RELAY_WATCH_COUNT" >> `+ran, "--debounce", "100ms", "--max-runs", "1")
	watch.Env = append(os.Environ(), env...)
	w := runWatch(t, watch)
	logs, done := w.log, w.done
	testkit.WaitFor(t, 20*time.Second, "the first watch", func() bool { return strings.Count(logs.String(), "the relay announces mail for IDLE") == 1 })
	addr := r.Addr
	r.Stop()
	relaytest.Start(t, "--listen", addr, "--data-dir", data)
	testkit.WaitFor(t, 30*time.Second, "the watch after the restart", func() bool { return strings.Count(logs.String(), "the relay announces mail for IDLE") == 2 })
	if code, _, errs := runCLI(t, env, "send", "--queue-if-unknown", "IDLE", "wake up"); code != 0 {
		t.Fatalf("send: %d %s", code, errs)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the mail did not wake the command")
	}
	if b, _ := os.ReadFile(ran); strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("runs: %q", b)
	}
}
