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
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      []byte
	heard    atomic.Bool // the client has sent something since the upgrade (gate.go)
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
		return c.Conn.Write(p)
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

// flush writes what was held in one call, bounded by timeout, and stops
// holding.
func (c *batchConn) flush(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	if len(c.buf) == 0 {
		return nil
	}
	c.Conn.SetWriteDeadline(time.Now().Add(timeout))
	err := c.writeHeld()
	c.Conn.SetWriteDeadline(time.Time{})
	return err
}

func (c *batchConn) writeHeld() error {
	_, err := c.Conn.Write(c.buf)
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
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.conn, 4096)), nil
}
