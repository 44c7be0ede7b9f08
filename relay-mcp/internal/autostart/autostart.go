// Package autostart starts relayd on this machine when relay-mcp's relay URL
// is loopback and nothing listens there, so that on one machine the MCP
// entry alone is enough. The relayd runs detached (it outlives the agent
// that started it), on the URL's port, with its store in $RELAY_HOME/data
// and its log in $RELAY_HOME/logs/relayd.log. When several relay-mcp start
// at once, a lock file lets one of them start it; the others find it
// listening.
package autostart

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/filelock"
)

// Env is the environment variable (and --autostart the flag) that turns
// it off: RELAY_AUTOSTART=off.
const Env = "RELAY_AUTOSTART"

// Enabled parses the --autostart / RELAY_AUTOSTART value: on (the default)
// or off.
func Enabled(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "on", "1", "true", "yes":
		return true, nil
	case "off", "0", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("--autostart / %s %q: use on or off", Env, v)
}

// Options say where and how relayd is started.
type Options struct {
	URL string // the relay URL, as link.ParseURL returns it
	// URLs, when it names more than one relay (a cluster's nodes), makes
	// Ensure start nothing: a relayd started here would hold mailboxes of
	// its own, apart from the cluster's.
	URLs   []string
	Home   string // $RELAY_HOME: data, logs and the start lock live here
	Logger *slog.Logger
	// Wait bounds the wait for the lock and for the started relayd to
	// listen. Defaults to 10 s.
	Wait time.Duration
	// Binary is the relayd to run; by default the one beside this
	// executable, else the one on PATH.
	Binary string
}

// Result says what Ensure did.
type Result struct {
	Started bool   // this process started relayd
	PID     int    // its pid, when started here
	Binary  string // the relayd that was started
	Log     string // where its log goes
}

// LogPath is where a relayd started by relay-mcp writes its log.
func LogPath(home string) string { return filepath.Join(home, "logs", "relayd.log") }

// PIDPath holds the pid of the last relayd relay-mcp started.
func PIDPath(home string) string { return filepath.Join(home, "relayd.pid") }

// LoopbackAddr is the host:port relayd would listen on for url: set only
// for a plain ws:// URL on a loopback address (a wss:// relay needs a
// certificate, and another host is not this machine's to start).
func LoopbackAddr(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "ws" {
		return ""
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return ""
	}
	return net.JoinHostPort(host, port)
}

// Find returns the relayd to start: beside this executable, else on PATH.
func Find() (string, error) {
	name := "relayd"
	if filepathExt := filepath.Ext(os.Args[0]); strings.EqualFold(filepathExt, ".exe") {
		name += ".exe"
	}
	var looked []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		p := filepath.Join(filepath.Dir(exe), name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
		looked = append(looked, "beside relay-mcp ("+filepath.Dir(exe)+")")
	}
	if p, err := exec.LookPath("relayd"); err == nil {
		return p, nil
	}
	looked = append(looked, "on PATH")
	return "", fmt.Errorf("no relayd %s: install it beside relay-mcp (make install, or go install github.com/claude-relay/claude-relay/relayd@latest once released), or start a relayd yourself; %s=off stops relay-mcp from trying", strings.Join(looked, " or "), Env)
}

// Listening reports whether something accepts TCP connections at addr.
func Listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Ensure starts relayd when o.URL is loopback and nothing listens there
// (and o.URLs names no other relay).
// It returns a zero Result when there was nothing to do.
func Ensure(ctx context.Context, o Options) (Result, error) {
	if len(o.URLs) > 1 {
		return Result{}, nil
	}
	addr := LoopbackAddr(o.URL)
	if addr == "" || Listening(addr) {
		return Result{}, nil
	}
	if o.Wait <= 0 {
		o.Wait = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(o.Home, "logs"), 0o700); err != nil {
		return Result{}, fmt.Errorf("start relayd: %w", err)
	}
	// One starter at a time; the others find it listening once they hold
	// the lock.
	lock, err := filelock.AcquireWithin(filepath.Join(o.Home, "relayd-start.lock"), o.Wait)
	if err != nil {
		return Result{}, fmt.Errorf("start relayd: %w", err)
	}
	defer lock.Release()
	if Listening(addr) {
		return Result{}, nil
	}
	bin := o.Binary
	if bin == "" {
		if bin, err = Find(); err != nil {
			return Result{}, fmt.Errorf("nothing listens on %s and %w", addr, err)
		}
	}
	logPath := LogPath(o.Home)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return Result{}, fmt.Errorf("start relayd: %w", err)
	}
	defer logf.Close()
	start, _ := logf.Seek(0, 2)
	cmd := exec.Command(bin, "--listen", addr, "--data-dir", filepath.Join(o.Home, "data"))
	cmd.Env = append(os.Environ(), "RELAY_HOME="+o.Home)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start relayd %s: %w", bin, err)
	}
	res := Result{Started: true, PID: cmd.Process.Pid, Binary: bin, Log: logPath}
	os.WriteFile(PIDPath(o.Home), []byte(strconv.Itoa(res.PID)+"\n"), 0o600)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps it if it ends while this process runs
	deadline := time.NewTimer(o.Wait)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !Listening(addr) {
		select {
		case err := <-exited:
			return res, fmt.Errorf("relayd %s exited at once (%v); its log %s says: %s", bin, err, logPath, logTail(logPath, start))
		case <-deadline.C:
			return res, fmt.Errorf("relayd %s (pid %d) started but does not listen on %s after %s; see its log %s", bin, res.PID, addr, o.Wait, logPath)
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
	}
	o.Logger.Info("nothing listened on the relay's address: started relayd", "addr", addr, "pid", res.PID, "binary", bin, "log", logPath)
	return res, nil
}

// logTail is the last lines written to the log since offset start.
func logTail(path string, start int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < start {
		return "(unreadable)"
	}
	s := strings.TrimSpace(string(b[start:]))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	if s == "" {
		return "(nothing)"
	}
	return s
}
