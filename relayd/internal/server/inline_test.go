//go:build linux || darwin

package server

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
)

// A lone send reaches a recipient whose writer is idle from the sender's
// own reader, with no hand-off to the recipient's writer (the round trip's
// latency on a busy machine), when the store commits it on that reader:
// the journal store's leader (startRelay's store). Recipients of both
// protocols.
func TestLoneSendIsWrittenByTheSendersReader(t *testing.T) {
	r := startRelay(t)
	a, _ := r.connect("CC-1", 0)
	b, _ := r.connect("CC-2", 0)
	old := r.connectLegacy("OLD", "")
	inline := r.srv.Hub.Stats().FramesInline.Load()
	for i := range 20 {
		a.send(&protocol.Send{Ref: "s" + strconv.Itoa(i), To: protocol.Recipients{"CC-2"}, Body: "the bug is in auth.js line 42"})
		expect[*protocol.Accepted](a)
		if m, err := nextMessage(b); err != nil || m.Body != "the bug is in auth.js line 42" || m.From != "CC-1" {
			t.Fatalf("CC-2 got %+v, %v", m, err)
		}
		a.send(&protocol.Send{Ref: "o" + strconv.Itoa(i), To: protocol.Recipients{"OLD"}, Body: "hello old friend"})
		expect[*protocol.Accepted](a)
		if m := old.nextOfType("message"); m["content"] != "hello old friend" {
			t.Fatalf("OLD got %v", m)
		}
	}
	if got := r.srv.Hub.Stats().FramesInline.Load() - inline; got < 20 {
		t.Errorf("%d frames written by the senders' reader over 40 lone sends to idle connections, want at least 20", got)
	}
}

// A sender's reader writes to a recipient only while the recipient's
// socket has room: a client that stopped reading never holds up the
// clients that send to it. Its writer waits for it instead, and closes it
// after the write timeout, here longer than the test.
func TestSendersAreNotHeldByARecipientThatStoppedReading(t *testing.T) {
	r := startRelay(t, func(s *Server, _ *hub.Options) { s.WriteTimeout, s.PingInterval = 10*time.Minute, 10*time.Minute })
	a, _ := r.connect("CC-1", 0)
	slow, _ := r.connect("SLOW", 0)
	_ = slow // never reads
	body := strings.Repeat("s", 8<<10)
	inline := r.srv.Hub.Stats().FramesInline.Load()
	// 24 MiB, one send at a time: more than the socket buffers on both
	// ends hold, so the recipient's socket fills while its writer is
	// idle between the sends. Each accepted must still come.
	const n = 3 << 10
	for i := range n {
		a.send(&protocol.Send{Ref: "s" + strconv.Itoa(i), To: protocol.Recipients{"SLOW"}, Body: body})
		expect[*protocol.Accepted](a)
	}
	if r.srv.Hub.Stats().FramesInline.Load() == inline {
		t.Error("no frame was written by the sender's reader: the test did not reach the path it guards")
	}
	a.send(&protocol.Peers{Ref: "p"})
	if ps := expect[*protocol.Peers](a).Peers; len(ps) != 2 {
		t.Errorf("peers %+v, want CC-1 and SLOW (its writer waits for it)", ps)
	}
}

// room reports what a socket takes without blocking: plenty on a fresh
// connection, nothing once the client stopped reading and it filled up
// (through the batchConn, as every write of relayd's is: room counts them
// against its last answer).
func TestRoomFallsToNothingOnAFullSocket(t *testing.T) {
	srv, cli := tcpPair(t)
	bc := &batchConn{Conn: srv}
	if got := bc.room(); got < 1<<10 {
		t.Fatalf("room on a fresh socket = %d, want at least 1 KiB", got)
	}
	chunk := make([]byte, 64<<10)
	for i := 0; ; i++ {
		if i == 4096 { // 256 MiB: no socket holds that much
			t.Fatal("writes never blocked on a client that does not read")
		}
		srv.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := bc.Write(chunk); err != nil {
			break
		}
	}
	if got := bc.room(); got != 0 {
		t.Errorf("room on a full socket = %d, want 0", got)
	}
	_ = cli
}

// tcpPair is both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}
