package server

import (
	"syscall"
	"unsafe"
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
		size, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		if err != nil {
			return
		}
		var queued int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&queued))); errno != 0 {
			return
		}
		room = max(size/2-int(queued), 0)
	})
	return room
}
