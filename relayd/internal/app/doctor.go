package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/internal/agentsetup"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/daemon"
	"github.com/claude-relay/claude-relay/relayd/internal/service"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// doctorCommand is `relayd doctor`: it checks, in order, what relayd needs
// with the same flags and environment relayd would serve with, and prints
// each check with what fixes it.
func doctorCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check this machine's relayd setup and say what to fix (exit 1 when something is wrong)",
		Description: `Checks, in order: this binary's version and protocol; the data directory and
the store (with --cluster: the NATS servers, the mail stream and the presence bucket
instead); the port (free, or taken by a running relayd or by which other program);
the running relayd's /healthz and version (with --cluster: its NATS connection and
how far it lags behind the stream, from its /metrics); the token configuration; the clock;
the service; which agents start relay-mcp and whether its Claude Code hooks are
installed. A data directory locked by a relayd that does not serve the given
port fails (relayd would refuse to start). Give it the flags (or environment)
you run relayd with.

Examples:
   relayd doctor
   relayd doctor --port 7777 --data-dir ~/relay-data
   RELAY_TOKEN=… relayd doctor --listen 0.0.0.0:9999
   relayd doctor --cluster nats://127.0.0.1:4222 --listen 0.0.0.0:9999 --token-file /etc/claude-relay/token`,
		Flags:  append(append(serveFlags(), securityFlags()...), clusterFlags()...),
		Action: func(c *cli.Context) error { return doctor(c, stdout) },
	}
}

// report prints checks as they finish.
type report struct {
	w     io.Writer
	fails int
}

func (r *report) line(status, name, msg, fix string) {
	fmt.Fprintf(r.w, "%-4s  %-8s  %s\n", status, name, msg)
	if fix != "" {
		fmt.Fprintf(r.w, "      %-8s  fix: %s\n", "", fix)
	}
}
func (r *report) ok(name, msg string)        { r.line("OK", name, msg, "") }
func (r *report) warn(name, msg, fix string) { r.line("WARN", name, msg, fix) }
func (r *report) fail(name, msg, fix string) { r.fails++; r.line("FAIL", name, msg, fix) }

func doctor(c *cli.Context, stdout io.Writer) error {
	ctx := c.Context
	r := &report{w: stdout}
	quiet := slog.New(slog.DiscardHandler)

	// 1. This binary.
	r.ok("version", fmt.Sprintf("relayd %s (protocol v%d), %s %s/%s", version(), protocol.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH))

	// 2. Data directory and store, or the cluster (doctor_cluster.go).
	inCluster := c.String("cluster") != ""
	if inCluster {
		checkCluster(ctx, c, r)
	} else if c.String("store") == "memory" {
		r.ok("store", "memory store: nothing on disk (messages are lost on restart)")
	} else {
		checkStore(ctx, c, r, quiet)
	}

	// 3. Port, and 4. the relayd that may be running there.
	addr, err := listenAddr(c.String("listen"), c.Int("port"))
	if err != nil {
		r.fail("port", err.Error(), "pass --listen host:port, for example 127.0.0.1:9999")
		return doctorExit(r)
	}
	useTLS := c.String("tls-cert") != ""
	var running *relayHealth
	var clock clockReading
	switch inUse, err := portFree(addr); {
	case err != nil:
		r.fail("port", fmt.Sprintf("relayd cannot listen on %s: %v", addr, err),
			"use an address of this machine with a port you may open, for example --listen 127.0.0.1:9999")
	case !inUse:
		r.ok("port", addr+" is free: relayd can listen there")
		r.warn("relay", "no relayd is running on "+addr, "start it: relayd (or relayd service install, or make run)")
	default:
		h, d, herr := probeWithDate(ctx, addr, useTLS)
		if herr != nil {
			who := "another program"
			if pid, name := portOwner(addr); pid != 0 {
				who = fmt.Sprintf("%s (pid %d)", name, pid)
			}
			r.fail("port", fmt.Sprintf("%s is taken by %s, which does not answer as relayd (%v)", addr, who, herr),
				"stop that program, or run relayd on another port: relayd --port 7777 (and RELAY_URL=ws://127.0.0.1:7777 for relay-mcp)")
			break
		}
		running, clock = &h, d
		pid, _ := portOwner(addr)
		where := ""
		if pid != 0 {
			where = fmt.Sprintf(" (pid %d)", pid)
		}
		r.ok("port", fmt.Sprintf("%s is taken by the running relayd%s", addr, where))
		switch {
		case h.Status == "degraded":
			r.fail("relay", fmt.Sprintf("relayd %s answers on %s but its store is failing (/healthz: degraded): sends are refused with store_unavailable", h.Version, addr),
				"check the disk of the data dir (full? read-only?) and relayd's log; health comes back with the next write that succeeds")
		case h.Proto != protocol.Version:
			r.fail("relay", fmt.Sprintf("relayd %s answers on %s but speaks protocol v%d; this relayd speaks v%d", h.Version, addr, h.Proto, protocol.Version),
				"restart the service with this binary: relayd service install (or stop the old relayd and start this one)")
		case h.Version != version():
			r.warn("relay", fmt.Sprintf("relayd %s answers /healthz on %s (%d peers online, up %s); this binary is %s", h.Version, addr, h.Online, fmtUptime(h.UptimeS), version()),
				"to run this version, restart it: systemctl --user restart relayd, or relayd service install again")
		default:
			r.ok("relay", fmt.Sprintf("relayd %s answers /healthz on %s: %d peers online, up %s", h.Version, addr, h.Online, fmtUptime(h.UptimeS)))
		}
		if inCluster {
			checkClusterLag(ctx, c, r, addr, useTLS)
		}
	}

	// 5. Tokens: what relayd would refuse at start, then whether the
	// running relay takes the token.
	checkTokens(ctx, c, r, addr, running != nil, useTLS, quiet)

	// 6. Clock: a relay reached through a tunnel is another machine, and
	// message times come from its clock.
	checkClock(r, clock)

	// The service, for information: not having one is fine.
	checkService(ctx, c, r)

	// Whether an agent starts relay-mcp, and its hooks.
	home, _ := os.UserHomeDir()
	cwd, _ := os.Getwd()
	for _, l := range agentsetup.Check(agentsetup.Env{Home: home, Cwd: cwd}) {
		name, msg, _ := strings.Cut(l.What, ": ")
		if l.Status == "OK" {
			r.ok(name, msg)
		} else {
			r.warn(name, msg, l.Fix)
		}
	}
	return doctorExit(r)
}

func doctorExit(r *report) error {
	if r.fails > 0 {
		return cli.Exit(fmt.Sprintf("doctor found %d problem(s); each FAIL line above says how to fix it", r.fails), 1)
	}
	fmt.Fprintln(r.w, "all checks passed")
	return nil
}

func dataDir(c *cli.Context) (string, error) {
	return daemon.DataDir(c.String("data-dir"))
}

func checkStore(ctx context.Context, c *cli.Context, r *report, log *slog.Logger) {
	dir, err := dataDir(c)
	if err != nil {
		r.fail("data dir", err.Error(), "set --data-dir or RELAY_HOME")
		return
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// Not created yet: relayd makes it on first start, if it can.
		parent := filepath.Dir(dir)
		for {
			if _, err := os.Stat(parent); err == nil || parent == filepath.Dir(parent) {
				break
			}
			parent = filepath.Dir(parent)
		}
		if err := writable(parent); err != nil {
			r.fail("data dir", fmt.Sprintf("%s does not exist and cannot be created: %v", dir, err), "create it as the user running relayd, or pass --data-dir DIR")
			return
		}
		r.ok("data dir", dir+" does not exist yet; relayd creates it on first start")
		return
	case err != nil:
		r.fail("data dir", err.Error(), "make it readable by the user running relayd, or pass --data-dir DIR")
		return
	case !fi.IsDir():
		r.fail("data dir", dir+" is a file, not a directory", "pass --data-dir DIR naming a directory")
		return
	}
	if err := writable(dir); err != nil {
		r.fail("data dir", fmt.Sprintf("%s is not writable: %v", dir, err), fmt.Sprintf("chown -R $USER %s (or pass another --data-dir)", dir))
		return
	}
	if fi.Mode().Perm()&0o077 != 0 {
		r.warn("data dir", fmt.Sprintf("%s is writable, but other users can read it (mode %o): it holds every message", dir, fi.Mode().Perm()), "chmod 700 "+dir)
	} else {
		r.ok("data dir", dir+" is writable")
	}

	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var st store.Store
	file := filepath.Join(dir, store.FileName)
	kind, _, err := daemon.ResolveStore(c.String("store"), dir)
	if err != nil {
		r.fail("store", err.Error(), "pass --store auto, journal or sqlite")
		return
	}
	if kind == "journal" {
		file = filepath.Join(dir, store.JournalFile)
	}
	if store.DurableKind(dir) == "" {
		// Opening would make the store's file: a later relayd --store
		// sqlite would then refuse the directory for holding a journal.
		r.ok("store", fmt.Sprintf("no store in %s yet: relayd makes its %s store there (%s) on first start", dir, kind, filepath.Base(file)))
		return
	}
	if kind == "journal" {
		st, err = store.OpenJournal(octx, dir, store.JournalOptions{Logger: log, CompactAt: -1})
	} else {
		st, err = store.Open(octx, dir, store.Options{Logger: log})
	}
	if err != nil {
		if strings.Contains(err.Error(), "in use by another relayd") {
			checkLockHolder(ctx, c, r, dir)
			return
		}
		r.fail("store", err.Error(), "see the message; relayd refuses to start until the store opens")
		return
	}
	defer st.Close()
	sessions, queued, err := st.Sessions(octx)
	if err != nil {
		r.fail("store", err.Error(), "the store opens but cannot be read: restore it from a backup (docs/operations.md)")
		return
	}
	unread := 0
	for _, n := range queued {
		unread += n
	}
	r.ok("store", fmt.Sprintf("%s opens: %d sessions known, %d unread messages", file, len(sessions), unread))
}

// checkLockHolder reports a store locked by a running relayd: fine when it
// is the relayd serving the address doctor was given, a failure otherwise
// (a relayd started with these flags could not start: a store takes one
// relayd at a time).
func checkLockHolder(ctx context.Context, c *cli.Context, r *report, dir string) {
	pid, args := lockHolder(filepath.Join(dir, "relay.lock"))
	addr, err := listenAddr(c.String("listen"), c.Int("port"))
	if err != nil {
		return // the port check says what is wrong
	}
	serves := false
	if pid != 0 {
		owner, _ := portOwner(addr)
		serves = owner == pid
	} else if inUse, _ := portFree(addr); inUse {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, perr := probeHealth(pctx, addr, c.String("tls-cert") != "")
		cancel()
		serves = perr == nil // cannot tell which relayd holds it: assume this one
	}
	if serves {
		r.ok("store", "locked by the running relayd, as it should be while one serves")
		return
	}
	holder, fix := "another relayd", "stop that relayd first, or give this one another --data-dir"
	if pid != 0 {
		holder = fmt.Sprintf("relayd pid %d (%s)", pid, strings.Join(args, " "))
		if port := listeningPort(pid); port != 0 {
			fix = fmt.Sprintf("that relayd serves this store on port %d already: use it (RELAY_URL=ws://127.0.0.1:%d for relay-mcp, or relayd doctor --port %d), stop it first, or give this one another --data-dir", port, port, port)
		}
	}
	r.fail("store", fmt.Sprintf("%s is in use by %s, which does not serve %s: a relayd started with these flags would refuse to start", dir, holder, addr), fix)
}

// lockHolder finds the process holding path open, on Linux, from
// /proc/*/fd: its pid and command line; 0 where it cannot tell (another OS,
// another user's process).
func lockHolder(path string) (int, []string) {
	want, err := filepath.EvalSymlinks(path)
	if err != nil {
		return 0, nil
	}
	pid, dir := procHolding(func(target string) bool { return target == want })
	if pid == 0 {
		return 0, nil
	}
	b, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) == 0 || args[0] == "" {
		args = []string{"relayd"}
	}
	return pid, args
}

// listeningPort is a TCP port process pid listens on, on Linux (0 where it
// cannot tell): the inodes of its sockets matched against /proc/net/tcp{,6}.
func listeningPort(pid int) int {
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return 0
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		if t, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && strings.HasPrefix(t, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(t, "socket:["), "]")] = true
		}
	}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, ln := range strings.Split(string(b), "\n") {
			f := strings.Fields(ln)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			if _, hex, ok := strings.Cut(f[1], ":"); ok {
				if port, err := strconv.ParseInt(hex, 16, 32); err == nil {
					return int(port)
				}
			}
		}
	}
	return 0
}

// writable creates and removes a file in dir.
func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".relayd-doctor-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// portFree reports whether something listens on addr already, or why
// relayd could not listen there for another reason.
func portFree(addr string) (inUse bool, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return true, nil
		}
		return false, err
	}
	return false, ln.Close()
}

// probeWithDate is probeHealth plus a reading of the relay's clock.
func probeWithDate(ctx context.Context, addr string, useTLS bool) (relayHealth, clockReading, error) {
	h, err := probeHealth(ctx, addr, useTLS)
	if err != nil {
		return h, clockReading{}, err
	}
	// One more request for the Date header; cheap, and keeps probeHealth simple.
	return h, relayDate(ctx, addr, useTLS), nil
}

// clockReading is the relay's clock (its Date header: one-second
// resolution) and this machine's at the moment the answer arrived. The
// two are compared as read: the checks doctor runs in between take
// seconds on a loaded machine.
type clockReading struct{ relay, local time.Time }

func relayDate(ctx context.Context, addr string, useTLS bool) clockReading {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, _, err := getLocal(ctx, addr, useTLS, "/healthz", "")
	if err != nil {
		return clockReading{}
	}
	local := time.Now()
	resp.Body.Close()
	t, _ := http.ParseTime(resp.Header.Get("Date"))
	return clockReading{relay: t, local: local}
}

func checkTokens(ctx context.Context, c *cli.Context, r *report, addr string, running, useTLS bool, log *slog.Logger) {
	sec, err := configFrom(c)
	if err == nil {
		sec.Listen = addr
		err = daemon.CheckExposure(sec, log)
	}
	if err != nil {
		// The message's first line is the problem, the rest its fix.
		problem, fix, _ := strings.Cut(err.Error(), "\n")
		if fix == "" {
			fix = "relayd refuses to start with this configuration; see the message"
		}
		r.fail("token", problem, strings.ReplaceAll(fix, "\n", " "))
		return
	}
	hasAuth := sec.Token != "" || sec.Tokens != nil
	switch {
	case !hasAuth && daemon.IsLoopback(addr):
		r.ok("token", "none set: relayd listens on loopback only, where clients need none")
	case !hasAuth:
		r.warn("token", "none set, and --insecure lets anyone who reaches "+addr+" steer your agents",
			"set a token: relayd token new, then --tokens-file; or keep relayd on loopback and use an SSH tunnel")
	default:
		if p := c.String("token-file"); p != "" && os.Getenv("RELAY_TOKEN") == "" {
			if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
				r.warn("token", fmt.Sprintf("%s is readable by other users (mode %o)", p, fi.Mode().Perm()), "chmod 600 "+p)
			}
		}
		r.ok("token", "configured ("+tokenKinds(sec.Token != "", sec.Tokens != nil)+")")
	}
	if !running {
		return
	}
	// /metrics needs the token when the relay has one: a cheap way to ask
	// whether the running relay takes ours.
	status := metricsStatus(ctx, addr, sec.Token, useTLS)
	switch {
	case status == http.StatusOK && sec.Token != "":
		r.ok("token", "the running relay accepts this token")
	case status == http.StatusUnauthorized && sec.Token != "":
		r.fail("token", "the running relay refuses this token",
			"the relay was started with another token: restart it with this one, or set RELAY_TOKEN to the relay's")
	case status == http.StatusUnauthorized && !hasAuth:
		r.warn("token", "the running relay requires a token, but none is set here", "set RELAY_TOKEN (or --token-file) to the relay's token for doctor and for clients")
	}
}

func tokenKinds(shared, perID bool) string {
	switch {
	case shared && perID:
		return "a shared token and per-identity tokens"
	case perID:
		return "per-identity tokens"
	}
	return "a shared token"
}

func metricsStatus(ctx context.Context, addr, token string, useTLS bool) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, _, err := getLocal(ctx, addr, useTLS, "/metrics", token)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func checkClock(r *report, clock clockReading) {
	now := time.Now()
	if now.Year() < 2024 {
		r.fail("clock", "this machine's clock says "+now.Format(time.RFC3339), "set the clock (timedatectl set-ntp true, or System Settings › Date & Time)")
		return
	}
	if clock.relay.IsZero() {
		r.ok("clock", "local clock "+now.UTC().Format(time.RFC3339)+" (no relay to compare with)")
		return
	}
	// Date has one-second resolution.
	skew := clock.local.Sub(clock.relay).Round(time.Second)
	if skew < -2*time.Second || skew > 2*time.Second {
		r.warn("clock", fmt.Sprintf("this machine and the relay disagree by %s: message times will look wrong", skew),
			"turn on time sync on both machines (timedatectl set-ntp true; macOS: Date & Time › Set automatically)")
		return
	}
	r.ok("clock", "agrees with the relay's (within 2 s)")
}

func checkService(ctx context.Context, c *cli.Context, r *report) {
	home, err := os.UserHomeDir()
	if err != nil {
		return
	}
	m := &service.Manager{Kind: defaultManager(), Home: home, ConfigHome: os.Getenv("XDG_CONFIG_HOME"), UID: os.Getuid(), Out: io.Discard}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := m.Status(sctx)
	switch {
	case err != nil:
		r.warn("service", err.Error(), "")
	case !st.Installed:
		r.ok("service", "no "+m.Kind+" service installed (optional: relayd service install starts relayd at login)")
	case !st.Running:
		r.warn("service", fmt.Sprintf("%s service installed (%s) but %s", m.Kind, st.Path, st.State), "see its logs: "+m.Logs())
	default:
		r.ok("service", fmt.Sprintf("%s service installed and %s", m.Kind, st.State))
	}
}
