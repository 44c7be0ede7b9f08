package e2e

// End-to-end tests of holes found by attacking relayd and relay-mcp (issue
// 15), with the real binaries: a status the relay refuses, an orphan after a
// takeover, long working directories, large threads.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"github.com/coder/websocket"
)

// A status the relay would refuse is refused by the tool and never kept: a
// kept one went into every reconnect's hello, which the relay refused, and
// the session stayed offline until relay-mcp restarted.
func TestE2ERefusedStatusNeverBlocksTheHello(t *testing.T) {
	data := t.TempDir()
	r := relaytest.Start(t, "--data-dir", data)
	home := t.TempDir()
	a := spawnAgent(t, r.URL(), "STAT", home, "RELAY_TOOLS=full")
	b := spawnAgent(t, r.URL(), "PEER", home)
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	a.call(t, "relay_set_status", map[string]any{"status": "good line"})
	txt, _ := a.call(t, "relay_set_status", map[string]any{"status": "bell\x07here"})
	if !strings.HasPrefix(txt, "ERROR") || !strings.Contains(txt, "control") {
		t.Fatalf("a control character in the status: %s", txt)
	}
	if _, sc := a.call(t, "relay_status", nil); sc["status"] != "good line" {
		t.Fatalf("status after a refused one: %v", sc["status"])
	}
	addr := r.Addr
	r.Stop()
	a.waitState(t, "reconnecting")
	relaytest.Start(t, "--listen", addr, "--data-dir", data)
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	b.call(t, "relay_send", map[string]any{"to": "STAT", "message": "after the restart"})
	if got := a.bodies(t, 1); len(got) != 1 || got[0] != "after the restart" {
		t.Fatalf("mail after the restart: %v", got)
	}
}

// A working directory, label or agent name over the relay's limit for hello
// metadata (1 024 bytes) made the relay refuse every hello: the session
// never connected. relay-mcp shortens them, a path keeping its end.
func TestE2ELongWorkingDirectoryAndLabelConnect(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	deep := t.TempDir()
	for i := 0; len(deep) <= protocol.MaxMetaBytes+100; i++ {
		deep = filepath.Join(deep, fmt.Sprintf("%02d-%s", i, strings.Repeat("d", 200)))
	}
	deep = filepath.Join(deep, "the-project")
	if err := os.MkdirAll(deep, 0o700); err != nil {
		t.Skipf("cannot make a directory %d bytes deep here: %v", len(deep), err)
	}
	home := t.TempDir()
	a := spawnAgentIn(t, deep, r.URL(), "DEEP", home,
		"RELAY_LABEL="+strings.Repeat("label ", 300), "RELAY_AGENT="+strings.Repeat("a", 1100))
	b := spawnAgent(t, r.URL(), "LOOK", home)
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	_, sc := b.call(t, "relay_peers", nil)
	var p map[string]any
	for _, x := range sc["peers"].([]any) {
		if x.(map[string]any)["id"] == "DEEP" {
			p = x.(map[string]any)
		}
	}
	cwd, _ := p["cwd"].(string)
	label, _ := p["label"].(string)
	if !strings.HasSuffix(cwd, string(filepath.Separator)+"the-project") || len(cwd) > protocol.MaxMetaBytes {
		t.Fatalf("peer's cwd (%d bytes) does not keep the path's end: …%s", len(cwd), cwd[max(0, len(cwd)-40):])
	}
	if !strings.HasPrefix(label, "label label") || len(label) > protocol.MaxMetaBytes {
		t.Fatalf("peer's label (%d bytes): %.40s…", len(label), label)
	}
}

// After a takeover the old relay-mcp (the orphan) shares the inbox
// directory with the session that replaced it: it must not read, mark or
// clear mail delivered to the new one.
func TestE2EOrphanDoesNotReadTheNewSessionsMail(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	old := spawnAgent(t, r.URL(), "SAME", home, "RELAY_TOOLS=full")
	old.waitState(t, "connected")
	newer := spawnAgent(t, r.URL(), "SAME", home)
	newer.waitState(t, "connected")
	old.waitState(t, "stopped")
	peer := spawnAgent(t, r.URL(), "PEER", home)
	peer.waitState(t, "connected")
	peer.text(t, "relay_send", map[string]any{"to": "SAME", "message": "for the live session", "thread": "t1"})
	newer.waitUnread(t, 1) // the mail in the shared inbox
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"relay_receive", nil},
		{"relay_receive", map[string]any{"include_read": true}},
		{"relay_thread", map[string]any{"thread": "t1"}},
		{"relay_clear_history", map[string]any{"include_unread": true}},
	} {
		txt, _ := old.call(t, c.tool, c.args)
		if strings.Contains(txt, "for the live session") || !strings.Contains(txt, "replaced") {
			t.Fatalf("the orphan's %s %v: %s", c.tool, c.args, txt)
		}
	}
	if got := newer.bodies(t, 1); len(got) != 1 || got[0] != "for the live session" {
		t.Fatalf("the live session reads %v", got)
	}
}

// A thread of large messages (any peer can write 34 × 1 MiB into one) made
// every relay_thread answer exceed relay-mcp's read limit: the connection
// dropped and reconnected on each call. A history page is bounded in bytes
// now (protocol.MaxHistoryBytes) and says there is more.
func TestE2ELargeThreadReadsWithoutDropping(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	a := spawnAgent(t, r.URL(), "BIGT", t.TempDir(), "RELAY_TOOLS=full")
	a.waitState(t, "connected")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, r.URL()+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	write := func(f protocol.Frame) {
		b, _ := protocol.Encode(f)
		if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	write(&protocol.Hello{Proto: protocol.Version, ClientID: "WRITER", Quiet: true})
	body := strings.Repeat("y", protocol.DefaultMaxBodyBytes-4096)
	const n = 34
	for i := range n {
		write(&protocol.Send{Ref: fmt.Sprintf("r%d", i), To: protocol.Recipients{"BIGT"}, Thread: "big", Body: fmt.Sprintf("%02d", i) + body})
	}
	accepted := 0
	for accepted < n {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("after %d accepted: %v", accepted, err)
		}
		if f, _ := protocol.Decode(b); f != nil && f.Type() == protocol.TypeAccepted {
			accepted++
		}
	}
	testkit.WaitFor(t, 30*time.Second, "the thread in BIGT's inbox", func() bool {
		_, sc := a.call(t, "relay_status", nil)
		u, _ := sc["unread"].(float64)
		return u == n
	})
	for range 2 {
		txt, sc := a.call(t, "relay_thread", map[string]any{"thread": "big", "limit": 50})
		if sc["source"] != "relay" || sc["more"] != true || strings.HasPrefix(txt, "ERROR") {
			t.Fatalf("relay_thread: source %v more %v: %.200s", sc["source"], sc["more"], txt)
		}
	}
	if _, sc := a.call(t, "relay_status", nil); sc["state"] != "connected" || sc["reconnects"].(float64) != 0 {
		t.Fatalf("relay_thread dropped the connection: %v", sc)
	}
}
