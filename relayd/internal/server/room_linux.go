package server

import (
	"syscall"
	"unsafe"
)

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
// blocking: half its send buffer (the kernel counts its own bookkeeping
// against the buffer too) less the bytes queued in it that the client has
// not taken yet. 0 when the socket cannot be asked (a TLS connection: its
// records are not the socket's bytes), or writes were aborted.
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
		var queued int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&queued))); errno != 0 {
			return
		}
		room = max(size/2-int(queued), 0)
	})
	c.credit.Store(int64(room))
	return room
}
