//go:build linux

package hook

import (
	"context"

	"golang.org/x/sys/unix"
)

// WatchDir returns a channel that receives when a file in dir is written,
// created, renamed into it or removed (inotify: the listener sleeps in the
// kernel until the inbox changes, with no polling). It ends with ctx.
func WatchDir(ctx context.Context, dir string) (<-chan struct{}, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MODIFY|unix.IN_CLOSE_WRITE|unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// A pipe wakes the reader when ctx ends.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		unix.Close(fd)
		return nil, err
	}
	ch := make(chan struct{}, 1)
	go func() {
		<-ctx.Done()
		unix.Write(p[1], []byte{0})
	}()
	go func() {
		defer unix.Close(fd)
		defer unix.Close(p[0])
		defer unix.Close(p[1])
		buf := make([]byte, 64<<10)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(p[0]), Events: unix.POLLIN}}
		for {
			fds[0].Revents, fds[1].Revents = 0, 0
			if _, err := unix.Poll(fds, -1); err != nil {
				if err == unix.EINTR {
					continue
				}
				return
			}
			if fds[1].Revents != 0 {
				return
			}
			if fds[0].Revents != 0 {
				if _, err := unix.Read(fd, buf); err != nil && err != unix.EINTR && err != unix.EAGAIN {
					return
				}
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	return ch, nil
}
