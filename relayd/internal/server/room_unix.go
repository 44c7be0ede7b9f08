//go:build linux || darwin

package server

import "syscall"

// sndbufAskEvery is how often room asks the socket its send buffer's size
// again: the kernel grows it as the connection's traffic needs (and may
// shrink it under memory pressure), but not from one write to the next,
// and asking costs a system call beside the one that reads what is queued.
const sndbufAskEvery = 64

// Between those asks, room trusts its last answer less the bytes written
// since (batchConn.credit): the client's reading only makes more room, so
// that is never more than the socket takes. It asks again every
// creditAskEvery calls, and whenever the credit is under creditFloor, so a
// frame is not sent to the writer on an old answer when the socket may
// well take it. A round trip's frames paid this ioctl beside each write.
const (
	creditAskEvery = 64
	creditFloor    = 64 << 10
)

// room is about how many bytes the socket takes now without a write
// blocking: half its send buffer (Linux counts its own bookkeeping against
// the buffer too; on macOS half is merely cautious) less the bytes queued
// in it that the client has not taken yet (sendQueued, per system). 0 when
// the socket cannot be asked (a TLS connection: its records are not the
// socket's bytes), or writes were aborted.
func (c *batchConn) room() int {
	if c.aborted.Load() {
		return 0
	}
	if credit := c.credit.Load(); credit >= creditFloor && c.creditCalls.Add(1)%creditAskEvery != 0 {
		return int(credit)
	}
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return 0
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	room := 0
	raw.Control(func(fd uintptr) {
		size := int(c.sndbuf.Load())
		if size == 0 || c.sndbufCalls.Add(1)%sndbufAskEvery == 0 {
			var err error
			if size, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF); err != nil {
				return
			}
			c.sndbuf.Store(int64(size))
		}
		queued, err := sendQueued(fd)
		if err != nil {
			return
		}
		room = max(size/2-queued, 0)
	})
	c.credit.Store(int64(room))
	return room
}
