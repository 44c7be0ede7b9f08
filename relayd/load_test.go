package main

// Short load tests of the relay's resource bounds (docs/security.md states
// each bound these tests hold): real relayd processes with their default
// limits, real WebSocket clients that misbehave, and the relay's memory
// read from /proc.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// procKiB reads a "Name:   N kB" line of /proc/pid/status (VmRSS, VmHWM).
func procKiB(t *testing.T, pid int, name string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the relay's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return 0
}

func needProc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the relay's memory from /proc: Linux only")
	}
}

// rawHello opens a /v1/ws connection as id and reads the welcome; after
// that nothing reads the socket unless the caller does.
func rawHello(t *testing.T, ctx context.Context, addr, id string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(64 << 20)
	b, _ := protocol.Encode(&protocol.Hello{Proto: protocol.Version, ClientID: id, Quiet: true})
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatalf("%s: no welcome: %v", id, err)
	}
	return ws
}

// maxHistoryLoadRSS is the bound docs/security.md states for
// TestHistoryFloodMemoryBounded: how far the relay's peak RSS may rise
// above its RSS before one client floods it with history requests it
// never reads.
const maxHistoryLoadRSS = 96 << 10 // KiB

// maxRSSAfterCut is how far above its RSS before the flood the relay may
// stay 10 s after the flooder was cut.
const maxRSSAfterCut = 64 << 10 // KiB

// A client that never reads its socket and asks for history pages over its
// own large sends made full replies pile up in its connection's queue:
// RSS grew past a gigabyte within the default limits. Now a page holds at
// most protocol.MaxHistoryBytes and a connection's queued replies at most
// the hub's ControlQueueBytes: past it the connection is closed as a slow
// consumer, and the relay's memory stays bounded.
func TestHistoryFloodMemoryBounded(t *testing.T) {
	needProc(t)
	p := relaytest.StartProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	reader := rawHello(t, ctx, p.Addr, "READER")
	go func() { // the recipient reads: only the flooder misbehaves
		for {
			if _, _, err := reader.Read(ctx); err != nil {
				return
			}
		}
	}()
	flood := rawHello(t, ctx, p.Addr, "FLOOD")
	body := strings.Repeat("x", protocol.DefaultMaxBodyBytes-1024)
	const sends, pages = 24, 40
	for i := range sends {
		b, _ := protocol.Encode(&protocol.Send{Ref: fmt.Sprintf("s%d", i), To: protocol.Recipients{"READER"}, Body: body})
		if err := flood.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	// A well-behaved history read first, so that the store's caches are
	// warm in the baseline.
	b, _ := protocol.Encode(&protocol.History{Ref: "warm", Limit: protocol.MaxHistoryLimit})
	if err := flood.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	for {
		_, data, err := flood.Read(ctx)
		if err != nil {
			t.Fatalf("warm-up history read: %v", err)
		}
		if f, _ := protocol.Decode(data); f != nil && f.Type() == protocol.TypeHistory {
			break
		}
	}
	base := procKiB(t, p.Pid(), "VmRSS")
	for i := range pages {
		b, _ := protocol.Encode(&protocol.History{Ref: fmt.Sprintf("h%d", i), Limit: protocol.MaxHistoryLimit})
		if err := flood.Write(ctx, websocket.MessageText, b); err != nil {
			t.Logf("history request %d not written (%v): the relay closed the flooder", i, err)
			break
		}
	}
	// Let the relay work through what it was sent, until it cuts the
	// flooder.
	testkit.Eventually(8*time.Second, func() bool { return strings.Contains(p.Logs(), "closing slow consumer") }) // told below
	peak := procKiB(t, p.Pid(), "VmHWM")
	flood.CloseNow()
	t.Logf("relay RSS before the history requests %d KiB, peak %d KiB", base, peak)
	if !strings.Contains(p.Logs(), "closing slow consumer") {
		t.Errorf("the flooder was not closed as a slow consumer")
	}
	if peak-base > maxHistoryLoadRSS {
		t.Fatalf("the relay's peak RSS was %d MiB under a history flood, %d MiB above where it started; the bound is %d MiB", peak>>10, (peak-base)>>10, maxHistoryLoadRSS>>10)
	}
	// The queue's memory goes back to the system once the flooder is
	// gone: the relay does not stay at its peak.
	var after int
	testkit.Eventually(10*time.Second, func() bool { // told below
		after = procKiB(t, p.Pid(), "VmRSS")
		return after <= base+maxRSSAfterCut
	})
	t.Logf("RSS after the cut %d KiB", after)
	if after > base+maxRSSAfterCut {
		t.Fatalf("10 s after the flooder was cut the relay's RSS is %d MiB, %d MiB above where it started; the bound is %d MiB", after>>10, (after-base)>>10, maxRSSAfterCut>>10)
	}
}

// maxIdleSocketsRSS is the bound docs/security.md states for
// TestIdleSocketsDoNotLockOutLocalClients: how far 200 sockets that never
// say hello may raise the relay's RSS.
const maxIdleSocketsRSS = 32 << 10 // KiB

// 200 sockets that never said hello filled the per-address cap, and every
// client from 127.0.0.1 got 429 until they timed out. Now a new
// connection takes the slot of the oldest one that has sent nothing for
// half the hello timeout; and 127.0.0.2 and up count as 127.0.0.1.
func TestIdleSocketsDoNotLockOutLocalClients(t *testing.T) {
	needProc(t)
	p := relaytest.StartProcess(t, "--hello-timeout", "4s") // idle sockets may be replaced after 2 s
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := procKiB(t, p.Pid(), "VmRSS")
	var idle []*websocket.Conn
	defer func() {
		for _, ws := range idle {
			ws.CloseNow()
		}
	}()
	for i := range 200 { // the default --max-conns-per-addr
		ws, _, err := websocket.Dial(ctx, "ws://"+p.Addr+"/v1/ws", nil)
		if err != nil {
			t.Fatalf("idle socket %d: %v", i, err)
		}
		idle = append(idle, ws)
	}
	opened := time.Now()
	rss := procKiB(t, p.Pid(), "VmRSS")
	t.Logf("relay RSS %d KiB before, %d KiB with 200 idle sockets", base, rss)
	if rss-base > maxIdleSocketsRSS {
		t.Errorf("200 idle sockets raised the relay's RSS by %d MiB; the bound is %d MiB", (rss-base)>>10, maxIdleSocketsRSS>>10)
	}
	time.Sleep(time.Until(opened.Add(2100 * time.Millisecond))) // let them age past half the hello timeout
	ws := rawHello(t, ctx, p.Addr, "LOCAL")                     // fails with 429 if the idle sockets still hold every slot
	ws.CloseNow()
}

// All loopback addresses are one address for --max-conns-per-addr.
func TestLoopbackRangeIsOneAddress(t *testing.T) {
	p := relaytest.StartProcess(t, "--max-conns-per-addr", "3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		ws := rawHello(t, ctx, p.Addr, fmt.Sprintf("A%d", i))
		defer ws.CloseNow()
	}
	from := func(ip string) *websocket.DialOptions {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}}
	}
	ws, resp, err := websocket.Dial(ctx, "ws://"+p.Addr+"/v1/ws", from("127.0.0.2"))
	if err == nil {
		ws.CloseNow()
		t.Fatal("a fourth connection from 127.0.0.2 was let in past a limit of 3 from this machine")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Skipf("cannot connect from 127.0.0.2 here: %v", err)
	}
}

// queue_if_unknown to ids never seen made a mailbox each, without bound:
// 290 MiB in 12 s within the other limits, kept for the retention period.
// Now a client may make --new-id-limit of them; past it such sends are
// refused with rate_limited naming the flag, and known ids still get mail.
func TestNewIDMailboxesBounded(t *testing.T) {
	p := relaytest.StartProcess(t, "--new-id-limit", "20/24h")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws := rawHello(t, ctx, p.Addr, "MAKER")
	known := rawHello(t, ctx, p.Addr, "KNOWN")
	known.CloseNow()
	body := strings.Repeat("z", 512<<10)
	answer := func(ref string, to string) protocol.Frame {
		t.Helper()
		b, _ := protocol.Encode(&protocol.Send{Ref: ref, To: protocol.Recipients{to}, Body: body, QueueIfUnknown: true})
		if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
			f, _ := protocol.Decode(data)
			if f != nil && protocol.RefOf(f) == ref {
				return f
			}
		}
	}
	for i := range 20 {
		if a, ok := answer(fmt.Sprint("n", i), fmt.Sprintf("NEVER-%03d", i)).(*protocol.Accepted); !ok || a.Recipients[0].Status != protocol.StatusQueued {
			t.Fatalf("fresh id %d: %+v", i, a)
		}
	}
	e, ok := answer("n20", "NEVER-020").(*protocol.ErrorFrame)
	if !ok || e.Code != protocol.CodeRateLimited || !strings.Contains(e.Message, "--new-id-limit") {
		t.Fatalf("the 21st id never seen: %+v", e)
	}
	if a, ok := answer("k", "KNOWN").(*protocol.Accepted); !ok || a.Recipients[0].Status != protocol.StatusQueued {
		t.Fatalf("a known id after the limit: %+v", a)
	}
}

// The store's size is bounded: past --max-store-mb a send is refused with
// store_full and nothing is stored. (Before, only retention and
// --max-queue bounded it: ~36 GB an hour could be written within the rate
// limits.)
func TestStoreSizeBounded(t *testing.T) {
	p := relaytest.StartProcess(t, "--max-store-mb", "2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rawHello(t, ctx, p.Addr, "OFFLINE").CloseNow()
	ws := rawHello(t, ctx, p.Addr, "FILLER")
	body := strings.Repeat("f", 256<<10)
	accepted := 0
	for i := 0; ; i++ {
		if i == 60 {
			t.Fatalf("%d sends of 256 KiB accepted, never store_full", accepted)
		}
		b, _ := protocol.Encode(&protocol.Send{Ref: fmt.Sprint("f", i), To: protocol.Recipients{"OFFLINE"}, Body: body})
		if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
		var f protocol.Frame
		for f == nil || protocol.RefOf(f) != fmt.Sprint("f", i) {
			_, data, err := ws.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			f, _ = protocol.Decode(data)
		}
		if e, ok := f.(*protocol.ErrorFrame); ok {
			if e.Code != protocol.CodeStoreFull || !strings.Contains(e.Message, "--max-store-mb") {
				t.Fatalf("send %d: %+v", i, e)
			}
			break
		}
		accepted++
		time.Sleep(100 * time.Millisecond) // the size is measured each second: a few seconds of sends
	}
	t.Logf("%d sends of 256 KiB accepted before store_full", accepted)
	if accepted < 4 || accepted > 24 {
		t.Fatalf("%d MiB accepted under a 2 MiB limit", accepted/4)
	}
}
