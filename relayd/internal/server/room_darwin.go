package server

import "syscall"

// sendQueued is the bytes in the socket's send buffer not sent yet
// (SO_NWRITE, the count macOS keeps where Linux answers TIOCOUTQ).
func sendQueued(fd uintptr) (int, error) {
	return syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_NWRITE)
}
