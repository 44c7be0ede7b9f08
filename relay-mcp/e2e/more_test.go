package e2e

// End-to-end tests of what the relay gained for relay-mcp: retry-safe sends
// (a connection cut between send and accepted), no_takeover and quiet for
// the one-shot commands, resume against a memory relay that restarted, and
// the context bytes a typical session's tool calls cost.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/cli"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// cutProxy forwards TCP to a relay. Armed, it reads the client's WebSocket
// frames, and on the first send frame stops forwarding the relay's answers,
// passes the send on and, once the relay has accepted it, cuts both sides:
// the relay has the message, the client never sees its accepted. Down, it
// refuses connections.
type cutProxy struct {
	url   string
	armed atomic.Bool
	down  atomic.Bool
	cuts  atomic.Int32
	mu    sync.Mutex
	open  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	p := &cutProxy{}
	p.url = proxy(t, target, p.serve)
	t.Cleanup(p.closeAll)
	return p
}

func (p *cutProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		c.Close()
	}
	p.open = nil
}

func (p *cutProxy) serve(c, s net.Conn) {
	if p.down.Load() {
		c.Close()
		s.Close()
		return
	}
	p.mu.Lock()
	p.open = append(p.open, c, s)
	p.mu.Unlock()
	mu := &muter{answered: make(chan struct{})}
	go func() { // relay → client, unless muted
		pump(c, s, func(b []byte) bool { return !mu.hold(b) })
		c.Close()
	}()
	p.clientToRelay(c, s, mu)
}

// muter stops the relay's answers to a client once a send is on its way,
// and tells when the relay answered that send: it has stored the message.
type muter struct {
	mu       sync.Mutex
	ref      []byte // `"ref":"…"` of the send, set when muting
	held     []byte // what the relay said since
	answered chan struct{}
	done     bool
}

func (m *muter) mute(sendPayload []byte) {
	var send struct {
		Ref string `json:"ref"`
	}
	json.Unmarshal(sendPayload, &send)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ref, _ = json.Marshal(map[string]string{"ref": send.Ref})
	m.ref = bytes.Trim(m.ref, "{}")
}

// hold keeps b from the client while muted, and reports whether it did.
func (m *muter) hold(b []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ref == nil {
		return false
	}
	if m.done {
		return true
	}
	m.held = append(m.held, b...)
	if bytes.Contains(m.held, []byte(`"type":"accepted"`)) && bytes.Contains(m.held, m.ref) {
		m.done = true
		close(m.answered)
	}
	return true
}

func (p *cutProxy) clientToRelay(c, s net.Conn, mu *muter) {
	defer s.Close()
	defer c.Close()
	r := &readBuf{r: c}
	// The HTTP upgrade request, as is.
	head, err := r.until([]byte("\r\n\r\n"))
	if err != nil || writeAll(s, head) != nil {
		return
	}
	for {
		frame, payload, op, err := r.wsFrame()
		if err != nil {
			return
		}
		if op == 1 && p.armed.Load() && bytes.Contains(payload, []byte(`"type":"send"`)) && p.armed.CompareAndSwap(true, false) {
			mu.mute(payload)
			writeAll(s, frame)
			select { // the relay stores it and answers; the client never sees the answer
			case <-mu.answered:
				p.cuts.Add(1)
			case <-time.After(10 * time.Second): // not a cut after storing: the test's count says so
			}
			return
		}
		if writeAll(s, frame) != nil {
			return
		}
	}
}

func writeAll(w io.Writer, b []byte) error { _, err := w.Write(b); return err }

type readBuf struct {
	r   io.Reader
	buf []byte
}

func (b *readBuf) fill() error {
	tmp := make([]byte, 32<<10)
	n, err := b.r.Read(tmp)
	b.buf = append(b.buf, tmp[:n]...)
	if n > 0 {
		return nil
	}
	return err
}

func (b *readBuf) until(sep []byte) ([]byte, error) {
	for {
		if i := bytes.Index(b.buf, sep); i >= 0 {
			out := append([]byte(nil), b.buf[:i+len(sep)]...)
			b.buf = b.buf[i+len(sep):]
			return out, nil
		}
		if err := b.fill(); err != nil {
			return nil, err
		}
	}
}

func (b *readBuf) need(n int) error {
	for len(b.buf) < n {
		if err := b.fill(); err != nil {
			return err
		}
	}
	return nil
}

// wsFrame reads one client frame: its raw bytes, its unmasked payload and
// its opcode.
func (b *readBuf) wsFrame() (raw, payload []byte, op byte, err error) {
	if err = b.need(2); err != nil {
		return
	}
	op = b.buf[0] & 0x0f
	masked := b.buf[1]&0x80 != 0
	n := uint64(b.buf[1] & 0x7f)
	hdr := 2
	switch n {
	case 126:
		if err = b.need(4); err != nil {
			return
		}
		n, hdr = uint64(binary.BigEndian.Uint16(b.buf[2:4])), 4
	case 127:
		if err = b.need(10); err != nil {
			return
		}
		n, hdr = binary.BigEndian.Uint64(b.buf[2:10]), 10
	}
	var key []byte
	if masked {
		if err = b.need(hdr + 4); err != nil {
			return
		}
		key = b.buf[hdr : hdr+4]
		hdr += 4
	}
	total := hdr + int(n)
	if err = b.need(total); err != nil {
		return
	}
	raw = append([]byte(nil), b.buf[:total]...)
	payload = append([]byte(nil), b.buf[hdr:total]...)
	for i := range payload {
		if key != nil {
			payload[i] ^= key[i%4]
		}
	}
	b.buf = b.buf[total:]
	return
}

// A connection cut after a send reached the relay and before its accepted
// came back: the send is resent with its ref — on the reconnect, and by a
// restarted relay-mcp from the persisted outbox — and the peer gets it once.
func TestE2ESendCutBeforeAcceptedDeliveredOnce(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	px := newCutProxy(t, r.Addr)
	home := t.TempDir()
	b := spawnAgent(t, r.URL(), "B", home)
	a := spawnAgent(t, px.url, "A", home)
	a.waitState(t, "connected")
	b.waitState(t, "connected")

	// 1. Cut, then the link reconnects and resends.
	px.armed.Store(true)
	txt, _ := a.call(t, "relay_send", map[string]any{"to": "B", "message": "cut-then-reconnect"})
	if px.cuts.Load() != 1 {
		t.Fatalf("the proxy did not cut (send answered: %s)", txt)
	}
	t.Logf("relay_send over the cut connection: %s", txt)
	exactlyOnce(t, b, "cut-then-reconnect")
	testkit.WaitFor(t, 10*time.Second, "A's outbox empty", func() bool {
		_, sc := a.call(t, "relay_status", nil)
		return sc["queued_outgoing"].(float64) == 0 && sc["state"] == "connected"
	})

	// 2. Cut, relay-mcp exits before it can reconnect; a new relay-mcp
	// with the same id and home resends from the persisted outbox.
	px.armed.Store(true)
	px.down.Store(true)
	txt, _ = a.call(t, "relay_send", map[string]any{"to": "B", "message": "cut-then-restart"})
	if px.cuts.Load() != 2 || !strings.Contains(txt, "Queued") {
		t.Fatalf("second cut: %d cuts, send answered %s", px.cuts.Load(), txt)
	}
	a.cs.Close()
	px.down.Store(false)
	a2 := spawnAgent(t, px.url, "A", home)
	a2.waitState(t, "connected")
	exactlyOnce(t, b, "cut-then-restart")
	testkit.WaitFor(t, 10*time.Second, "restarted A's outbox empty", func() bool {
		_, sc := a2.call(t, "relay_status", nil)
		return sc["queued_outgoing"].(float64) == 0
	})
}

// runCLI runs the relay-mcp binary with args and returns its exit code and output.
func runCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	return runCLIWith(t, "", env, args...)
}

// relayMCPIn runs `relay-mcp ARGS...` in the test's environment with stdin
// and returns its exit code, stdout and stderr.
func relayMCPIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	return runCLIWith(t, stdin, nil, args...)
}

// runCLIWith runs `relay-mcp ARGS...` with stdin, in the test's environment
// plus env, and returns its exit code, stdout and stderr.
func runCLIWith(t *testing.T, stdin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bins.relayMCP, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// One-shot commands never knock a live session offline: an id in use is
// refused by the relay (no_takeover) and the command says who holds it, or
// reads the inbox that session keeps, or falls back to another id.
func TestE2ECLINoTakeover(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	env := []string{"RELAY_HOME=" + home, "RELAY_URL=" + r.URL(), "CLAUDE_RELAY_SESSION_ID="}
	agent, peer := connectedPair(t, r.URL(), home, "CC-1", "CC-2")
	pid := agent.cmd.Process.Pid

	// send --as a live id: refused, the holder named, exit 7.
	code, out, errs := runCLI(t, env, "send", "--as", "CC-1", "CC-2", "hi")
	if code != cli.ExitInUse || out != "" || !strings.Contains(errs, fmt.Sprintf("relay-mcp pid %d", pid)) || !strings.Contains(errs, "--takeover") {
		t.Fatalf("send --as CC-1: %d %q %q", code, out, errs)
	}
	// The same from a machine whose registry does not know CC-1.
	other := []string{"RELAY_HOME=" + t.TempDir(), "RELAY_URL=" + r.URL(), "CLAUDE_RELAY_SESSION_ID="}
	code, _, errs = runCLI(t, other, "receive", "--id", "CC-1")
	if code != cli.ExitInUse || !strings.Contains(errs, "another connection holds it") {
		t.Fatalf("receive --id CC-1 from elsewhere: %d %q", code, errs)
	}
	// receive for a session running here reads the inbox it keeps.
	peer.text(t, "relay_send", map[string]any{"to": "CC-1", "message": "for CC-1"})
	agent.waitUnread(t, 1) // CC-1 stored the message
	code, out, errs = runCLI(t, env, "receive", "--id", "CC-1")
	if code != 0 || !strings.Contains(out, "CC-2: for CC-1") {
		t.Fatalf("receive --id CC-1 here: %d %q %q", code, out, errs)
	}
	_, sc := agent.call(t, "relay_status", nil)
	if sc["state"] != "connected" || sc["reconnects"].(float64) != 0 {
		t.Fatalf("CC-1 was disturbed: %v", sc)
	}

	// Plain send goes as cli-HOST; while cli-HOST is online, as cli-HOST-PID.
	host, _ := os.Hostname()
	cliID := cli.CLIID(host)
	code, out, errs = runCLI(t, env, "send", "CC-2", "from a script")
	if code != 0 || !strings.Contains(out, "CC-2=delivered") || errs != "" {
		t.Fatalf("send: %d %q %q", code, out, errs)
	}
	if got := peer.bodies(t, 1); len(got) != 1 || got[0] != "from a script" {
		t.Fatalf("CC-2 got %v", got)
	}
	_, sc = peer.call(t, "relay_receive", map[string]any{"include_read": true, "count": 1})
	if from := sc["messages"].([]any)[0].(map[string]any)["from"]; from != cliID {
		t.Fatalf("sent as %v, want %s", from, cliID)
	}
	holder := spawnAgent(t, r.URL(), cliID, t.TempDir())
	holder.waitState(t, "connected")
	code, out, errs = runCLI(t, env, "peers", "--json")
	if code != 0 || !strings.Contains(out, `"id": "`+cliID+`"`) || !strings.Contains(out, `"CC-1"`) {
		t.Fatalf("peers while %s is online: %d %q %q", cliID, code, out, errs)
	}
	_, sc = holder.call(t, "relay_status", nil)
	if sc["reconnects"].(float64) != 0 || sc["state"] != "connected" {
		t.Fatalf("%s was disturbed: %v", cliID, sc)
	}
	holder.cs.Close()

	// Repeated runs leave one cli-HOST session on the relay, not one per run.
	for range 3 {
		runCLI(t, env, "peers")
	}
	txt, _ := peer.call(t, "relay_sessions", nil)
	if n := strings.Count(txt, "- cli-"); n > 2 { // cli-HOST, and the one cli-HOST-PID of the fallback above
		t.Fatalf("%d cli sessions on the relay:\n%s", n, txt)
	}

	// --takeover does what it says.
	code, _, errs = runCLI(t, env, "send", "--as", "CC-1", "--takeover", "CC-2", "taken")
	if code != 0 {
		t.Fatalf("--takeover: %d %q", code, errs)
	}
	agent.waitState(t, "stopped")
}

// memoryRelayRestarted starts a memory relay, A sends B three messages that
// B reads (B holds seq 3), and the relay restarts on its address with empty
// mailboxes. It returns the relay, the agents' RELAY_HOME, A and B.
func memoryRelayRestarted(t *testing.T) (*relaytest.Relay, string, *agentProc, *agentProc) {
	t.Helper()
	r := relaytest.Start(t, "--store", "memory")
	addr := r.Addr
	home := t.TempDir()
	a, b := connectedPair(t, r.URL(), home, "A", "B")
	for i := 1; i <= 3; i++ {
		a.call(t, "relay_send", map[string]any{"to": "B", "message": fmt.Sprintf("before-%d", i)})
	}
	exactlyOnce(t, b, "before-1", "before-2", "before-3") // B holds seq 3

	r.Stop()
	return relaytest.Start(t, "--store", "memory", "--listen", addr), home, a, b
}

// A memory relay that restarts forgets every mailbox. The session resumes
// from the last seq it received, so after the restart the new (lower) seqs
// are followed: nothing sent after the restart is skipped or duplicated.
func TestE2EMemoryRelayRestartResume(t *testing.T) {
	r, home, a, b := memoryRelayRestarted(t) // empty mailboxes: seqs start at 1 again
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	a.call(t, "relay_send", map[string]any{"to": "B", "message": "after-1"}) // B's seq 1
	exactlyOnce(t, b, "after-1")

	b.cs.Close() // B goes away; its mail waits on the relay as seq 2..4
	for i := 2; i <= 4; i++ {
		txt, _ := a.call(t, "relay_send", map[string]any{"to": "B", "message": fmt.Sprintf("after-%d", i)})
		if !strings.Contains(txt, "queued") {
			t.Fatalf("send to offline B: %s", txt)
		}
	}
	b2 := spawnAgent(t, r.URL(), "B", home) // resumes after seq 1, not 3
	b2.waitState(t, "connected")
	exactlyOnce(t, b2, "after-2", "after-3", "after-4")
}

// A session that reconnects to a reset relay before any new mail arrives
// must not keep its old resume point: once mail queues past it, a resume
// from there would skip the first messages (welcome.last_seq tells it).
func TestE2EMemoryRelayRestartIdleResume(t *testing.T) {
	r, home, a, b := memoryRelayRestarted(t)
	a.waitState(t, "connected")
	b.waitState(t, "connected") // resumes with 3; the relay's mailbox has issued nothing
	b.cs.Close()
	for i := 1; i <= 4; i++ {
		txt, _ := a.call(t, "relay_send", map[string]any{"to": "B", "message": fmt.Sprintf("after-%d", i)})
		if !strings.Contains(txt, "queued") {
			t.Fatalf("send to offline B: %s", txt)
		}
	}
	b2 := spawnAgent(t, r.URL(), "B", home)
	b2.waitState(t, "connected")
	exactlyOnce(t, b2, "after-1", "after-2", "after-3", "after-4")
}
