package doctor

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// process is a running program: its pid and command line.
type process struct {
	pid  int
	args []string
	// For an ssh tunnel: the forwarded host:port on the far side, and the
	// ssh destination (the last argument).
	remote, dest string
}

// processes lists this machine's processes, best effort: /proc where it
// exists (Linux), else ps (macOS, BSD). An empty list means "cannot tell".
func processes() []process {
	if ents, err := os.ReadDir("/proc"); err == nil {
		var out []process
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil || len(b) == 0 {
				continue
			}
			args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
			out = append(out, process{pid: pid, args: args})
		}
		if len(out) > 0 {
			return out
		}
	}
	b, err := exec.Command("ps", "-axo", "pid=,args=").Output()
	if err != nil {
		return nil
	}
	var out []process
	for _, ln := range strings.Split(string(b), "\n") {
		f := strings.Fields(ln)
		if len(f) < 2 {
			continue
		}
		if pid, err := strconv.Atoi(f[0]); err == nil {
			out = append(out, process{pid: pid, args: f[1:]})
		}
	}
	return out
}

// findRelayd returns a local relayd serve process (not `relayd doctor`,
// `relayd version` …), or false.
func findRelayd(ps []process) (process, bool) {
	for _, p := range ps {
		if len(p.args) == 0 || filepath.Base(p.args[0]) != "relayd" {
			continue
		}
		if len(p.args) > 1 && !strings.HasPrefix(p.args[1], "-") {
			continue // a subcommand, not the server
		}
		return p, true
	}
	return process{}, false
}

// findTunnel returns an ssh process forwarding local port (ssh -L port:… or
// -Lport:…, also with a bind address), or false.
func findTunnel(ps []process, port string) (process, bool) {
	for _, p := range ps {
		if len(p.args) == 0 || filepath.Base(p.args[0]) != "ssh" {
			continue
		}
		for i, a := range p.args {
			spec := ""
			switch {
			case a == "-L" && i+1 < len(p.args):
				spec = p.args[i+1]
			case strings.HasPrefix(a, "-L"):
				spec = a[2:]
			default:
				continue
			}
			f := strings.Split(spec, ":")
			if (len(f) == 3 && f[0] == port) || (len(f) == 4 && f[1] == port) {
				p.remote = strings.Join(f[len(f)-2:], ":")
				p.dest = p.args[len(p.args)-1]
				return p, true
			}
		}
	}
	return process{}, false
}

// listener returns the process listening on TCP port on this machine, when
// the system tells (Linux: /proc/net/tcp and each process's open sockets,
// as far as this user may read them).
func listener(ps []process, port string) (process, bool) {
	p, err := strconv.Atoi(port)
	if err != nil {
		return process{}, false
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, ln := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st … inode
			fs := strings.Fields(ln)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			if lp, err := strconv.ParseInt(fs[1][i+1:], 16, 32); err == nil && int(lp) == p {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return process{}, false
	}
	for _, pr := range ps {
		dir := filepath.Join("/proc", strconv.Itoa(pr.pid), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && inodes[l] {
				return pr, true
			}
		}
	}
	return process{}, false
}
