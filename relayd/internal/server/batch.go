package server

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The websocket library flushes every frame to the socket on its own: one
// write syscall per frame. A writer with a burst of frames (a backlog after
// a reconnect, a broadcast storm, replies to a pipelining client) should pay
// one syscall for the burst instead. batchConn sits under the library's
// buffered writer and holds what it is given between begin and flush.

// maxBatchBytes bounds what one batch holds before it is written out, so a
// burst of large messages never piles up in memory.
const maxBatchBytes = 256 << 10

// batchConn is a net.Conn whose writes can be held and written at once.
// A batch's writes are bounded by the socket's write deadline, moved on
// before each frame, so the frames need no context deadline of their own
// (one timer and one context callback per frame, otherwise).
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      []byte
	heard    atomic.Bool // the client has sent something since the upgrade (gate.go)
	aborted  atomic.Bool // abort was called: every write fails at once

	// room's (room_unix.go): the socket's send buffer size as last asked,
	// and how many times room was called since.
	sndbuf      atomic.Int64
	sndbufCalls atomic.Uint32
	// credit is room's last answer less the bytes written since, and
	// creditCalls how many times room answered with it.
	credit      atomic.Int64
	creditCalls atomic.Uint32
	// enc is the buffer frames are encoded into (writeBounded): used by
	// whoever holds the connection's write role, one frame at a time.
	enc []byte
}

func (c *batchConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.heard.Load() {
		c.heard.Store(true)
	}
	return n, err
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.batching {
		n, err := c.Conn.Write(p)
		c.credit.Add(-int64(n))
		return n, err
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= maxBatchBytes {
		if err := c.writeHeld(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// begin holds writes until flush.
func (c *batchConn) begin() {
	c.mu.Lock()
	c.batching = true
	c.mu.Unlock()
}

// frame is called before each frame of a batch: the socket writes it leads
// to (a batch that outgrew maxBatchBytes, the flush) must end within
// timeout of it, as a frame written on its own must.
func (c *batchConn) frame(timeout time.Duration) {
	c.setDeadline(time.Now().Add(timeout))
}

// flush writes what was held in one call and stops holding.
func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	var err error
	if len(c.buf) > 0 {
		err = c.writeHeld()
	}
	c.setDeadline(time.Time{})
	return err
}

// abort makes writes in progress and to come fail at once: the writer's
// context ended, and its writes no longer watch the context.
func (c *batchConn) abort() {
	c.aborted.Store(true)
	c.Conn.SetWriteDeadline(time.Unix(1, 0))
}

// setDeadline sets the write deadline unless abort was called. The flag is
// read after the deadline is set, so an abort racing with it still wins.
func (c *batchConn) setDeadline(t time.Time) {
	c.Conn.SetWriteDeadline(t)
	if c.aborted.Load() {
		c.Conn.SetWriteDeadline(time.Unix(1, 0))
	}
}

func (c *batchConn) writeHeld() error {
	n, err := c.Conn.Write(c.buf)
	c.credit.Add(-int64(n))
	if cap(c.buf) > maxBatchBytes {
		c.buf = nil // do not keep a large buffer for an idle connection
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// batchingWriter hands the websocket library a batchConn when it hijacks
// the connection.
type batchingWriter struct {
	http.ResponseWriter
	conn *batchConn
	br   *bufio.Reader // what the websocket library reads frames from
}

func (w *batchingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		c.Close()
		return nil, nil, err
	}
	w.conn = &batchConn{Conn: c}
	// Reads go through the server's buffered reader: make it read from
	// the batchConn, so that heard sees the client's first bytes. A
	// client that sent before the upgrade was answered was heard already.
	if brw.Reader.Buffered() > 0 {
		w.conn.heard.Store(true)
	} else {
		brw.Reader.Reset(w.conn)
	}
	w.br = brw.Reader
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.conn, 4096)), nil
}
