//go:build linux

package hook

import (
	"bytes"
	"context"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WatchDir returns a channel that receives when one of the named files in
// dir is written, created, renamed into place or removed (inotify: the
// listener sleeps in the kernel until the inbox changes, with no polling).
// Other files are ignored: opening and closing the inbox's lock file, as a
// look at the inbox does, must not count as a change. It ends with ctx.
func WatchDir(ctx context.Context, dir string, names ...string) (<-chan struct{}, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE); err != nil {
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
				n, err := unix.Read(fd, buf)
				if err != nil && err != unix.EINTR && err != unix.EAGAIN {
					return
				}
				if !anyNamed(buf[:max(n, 0)], want) {
					continue
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

// anyNamed reports whether the inotify events in b name a wanted file (all
// files when want is empty).
func anyNamed(b []byte, want map[string]bool) bool {
	if len(want) == 0 {
		return len(b) > 0
	}
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			return false
		}
		name := string(bytes.TrimRight(b[unix.SizeofInotifyEvent:end], "\x00"))
		if want[name] {
			return true
		}
		b = b[end:]
	}
	return false
}
