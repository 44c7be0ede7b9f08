package app

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// portOwner finds the process listening on addr's TCP port, on Linux, from
// /proc/net/tcp{,6} (the socket's inode) and /proc/*/fd (who holds it).
// It returns 0 where it cannot tell: another OS, or another user's process
// (whose fds are not readable without root).
func portOwner(addr string) (pid int, name string) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, ""
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return 0, ""
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		listeningInodes(f, port, inodes)
	}
	if len(inodes) == 0 {
		return 0, ""
	}
	pid, dir := procHolding(func(target string) bool {
		ino, ok := strings.CutPrefix(target, "socket:[")
		return ok && inodes[strings.TrimSuffix(ino, "]")]
	})
	if pid == 0 {
		return 0, ""
	}
	comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
	return pid, strings.TrimSpace(string(comm))
}

// procHolding walks /proc/*/fd (Linux) for the first process with a
// descriptor whose link target match accepts, and returns its pid and /proc
// folder; 0 when none does (another OS, or only other users' processes,
// whose fds are not readable without root).
func procHolding(match func(target string) bool) (pid int, dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, fdDir := range procs {
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && match(target) {
				dir := filepath.Dir(fdDir)
				pid, _ := strconv.Atoi(filepath.Base(dir))
				return pid, dir
			}
		}
	}
	return 0, ""
}

// listeningInodes adds the inodes of sockets listening on port in one
// /proc/net/tcp table: "sl local_address rem_address st … inode", the port
// in hex after the colon, state 0A is LISTEN.
func listeningInodes(table string, port int, into map[string]bool) {
	f, err := os.Open(table)
	if err != nil {
		return
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" || !strings.HasSuffix(fields[1], want) {
			continue
		}
		into[fields[9]] = true
	}
}
