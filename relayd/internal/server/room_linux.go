package server

import (
	"syscall"
	"unsafe"
)

// sendQueued is the bytes in the socket's send queue that the client has
// not taken yet (TIOCOUTQ).
func sendQueued(fd uintptr) (int, error) {
	var queued int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&queued))); errno != 0 {
		return 0, errno
	}
	return int(queued), nil
}
