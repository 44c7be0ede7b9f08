// Package relaytest runs the real relayd for the tests of its clients. Start
// serves it in the test's own process: relayd's flags fill the same Config
// that `relayd ARGS...` would serve, and the same Run serves it (hub,
// server, SQLite store), on a free loopback port. StartProcess runs it as a
// process of its own, the test binary re-executed as relayd, for tests of
// what only a process shows: kill -9 with no shutdown and no flush
// (StartBinary runs a built relayd the same way).
//
//	func TestMain(m *testing.M) {
//		relaytest.Main() // serves as relayd when StartProcess re-executes the test binary
//		os.Exit(m.Run())
//	}
//
//	r := relaytest.Start(t, "--store", "memory")
//	… connect clients to r.URL() …
package relaytest

import (
	"context"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/internal/app"
	"github.com/claude-relay/claude-relay/relayd/internal/daemon"
	"github.com/claude-relay/claude-relay/relayd/internal/gctune"
)

// runEnv, set to "1" in a re-executed test binary, makes Main serve relayd.
const runEnv = "RELAYTEST_RUN_RELAYD"

// within bounds a start and a stop.
const within = 20 * time.Second

// Relay is one running relayd.
type Relay struct {
	// Addr is where it listens (host:port).
	Addr string
	logs *testkit.Buffer

	stop func() // in this process: cancel Run
	cmd  *exec.Cmd
	done chan struct{} // closed when it has stopped
}

// URL is the WebSocket URL clients dial (ws://Addr).
func (r *Relay) URL() string { return "ws://" + r.Addr }

// Logs is what relayd logged so far.
func (r *Relay) Logs() string { return r.logs.String() }

// defaults go before the test's args (a flag given twice takes the later
// value): any loopback port, a SQLite store of the test's own.
func defaults(t testing.TB) []string {
	return []string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}
}

// Start serves relayd in this process as `relayd ARGS...` would, with
// --listen 127.0.0.1:0 and --data-dir in a temporary folder unless args
// say otherwise (the environment fills the flags args leave out, as for
// relayd). It returns once relayd accepts connections; the test's cleanup
// stops it, and shows its log if the test failed.
func Start(t testing.TB, args ...string) *Relay {
	t.Helper()
	cfg, err := app.ConfigFromArgs(append(defaults(t), args...))
	if err != nil {
		t.Fatalf("relayd %v: %v", args, err)
	}
	ready := make(chan string, 1)
	cfg.Ready = func(addr string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{logs: &testkit.Buffer{}, stop: cancel, done: make(chan struct{})}
	var runErr error
	go func() {
		runErr = daemon.Run(ctx, cfg, r.logs)
		close(r.done)
	}()
	cleanup(t, r)
	select {
	case r.Addr = <-ready:
	case <-r.done:
		t.Fatalf("relayd %v did not start: %v\n%s", args, runErr, r.Logs())
	case <-time.After(within):
		t.Fatalf("relayd %v did not start within %v:\n%s", args, within, r.Logs())
	}
	return r
}

// Stop shuts relayd down as SIGTERM does (clients are closed with 1001,
// reconnect later) and waits until it has. A second Stop does nothing.
func (r *Relay) Stop() {
	if r.cmd != nil {
		r.cmd.Process.Signal(syscall.SIGTERM)
	} else {
		r.stop()
	}
	r.wait()
}

// Kill ends a relayd of StartProcess or StartBinary with SIGKILL: no shutdown, no store
// flush, no close frames. It waits until the process is gone.
func (r *Relay) Kill(t testing.TB) {
	t.Helper()
	if r.cmd == nil {
		t.Fatal("relaytest: only a relayd process can be killed; Stop ends one in this process")
	}
	r.cmd.Process.Kill()
	r.wait()
}

// Pid is a relayd process's id (0 for one in this process).
func (r *Relay) Pid() int {
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// ExitCode is how a relayd process ended: its exit code, or -1 while it
// runs, when a signal ended it, or for a relayd in this process.
func (r *Relay) ExitCode() int {
	if r.cmd == nil {
		return -1
	}
	select {
	case <-r.done: // Wait has set ProcessState
		return r.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

func (r *Relay) wait() {
	select {
	case <-r.done:
	case <-time.After(within):
		// Run has a bounded shutdown; past this something hangs, and the
		// test's own timeout will name it.
	}
}

func cleanup(t testing.TB, r *Relay) {
	t.Cleanup(func() {
		if r.cmd != nil {
			r.cmd.Process.Kill()
		} else {
			r.stop()
		}
		r.wait()
		if t.Failed() {
			t.Logf("relayd %s log:\n%s", r.Addr, tail(r.Logs(), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Main serves relayd, and exits, when StartProcess re-executed the test
// binary; otherwise it returns at once. Call it first in TestMain.
func Main() {
	if os.Getenv(runEnv) != "1" {
		return
	}
	gctune.Start(gctune.DefaultFloor) // as relayd's main
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

var listeningRE = regexp.MustCompile(`relayd listening.*addr=(\S+)`)

// StartProcess runs relayd as a process of its own: the test binary,
// re-executed with args after the defaults of Start, serves as relayd
// (TestMain must call Main). It returns once relayd listens; the test's
// cleanup kills it.
func StartProcess(t testing.TB, args ...string) *Relay {
	t.Helper()
	return startProcess(t, Command(append(defaults(t), args...)...))
}

// StartBinary is StartProcess with the relayd binary at bin, for tests of
// what only that binary shows (its version stamp, its process name).
func StartBinary(t testing.TB, bin string, args ...string) *Relay {
	t.Helper()
	return startProcess(t, exec.Command(bin, append(defaults(t), args...)...))
}

// Command is relayd as a process of its own, not yet started: the test
// binary re-executed with exactly args (no defaults) in the test's
// environment; TestMain must call Main. It is for tests of how relayd
// starts, refuses to, or exits.
func Command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runEnv+"=1")
	return cmd
}

// StartProcesses runs several relayd processes at once, one for each list
// of args (after Start's defaults), and returns once every one listens: for
// relayds that need each other to start, as the nodes of a cluster that
// carry their NATS servers (--cluster embedded) elect a leader together.
func StartProcesses(t testing.TB, args ...[]string) []*Relay {
	t.Helper()
	var rs []*Relay
	for _, a := range args {
		rs = append(rs, launch(t, Command(append(defaults(t), a...)...)))
	}
	for _, r := range rs {
		// A cluster's node listens once its NATS node has joined the
		// others and the stream exists: slower than one relayd.
		r.waitListening(t, 3*within)
	}
	return rs
}

// startProcess runs cmd with a RELAY_HOME of its own added to its
// environment (the test's when cmd has none).
func startProcess(t testing.TB, cmd *exec.Cmd) *Relay {
	t.Helper()
	r := launch(t, cmd)
	r.waitListening(t, within)
	return r
}

// launch starts cmd, as startProcess does, without waiting.
func launch(t testing.TB, cmd *exec.Cmd) *Relay {
	t.Helper()
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "RELAY_HOME="+t.TempDir())
	r := &Relay{logs: &testkit.Buffer{}, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, r.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(r.done) }()
	cleanup(t, r)
	return r
}

// waitListening waits (at most d) until a launched relayd says where it
// listens.
func (r *Relay) waitListening(t testing.TB, d time.Duration) {
	t.Helper()
	cmd := r.cmd
	testkit.WaitFor(t, d, "relayd "+cmd.String()+" to listen", func() bool {
		select {
		case <-r.done:
			t.Fatalf("relayd exited before it listened: %s\n%s", cmd.ProcessState, r.Logs())
		default:
		}
		if m := listeningRE.FindStringSubmatch(r.Logs()); m != nil {
			r.Addr = m[1]
		}
		return r.Addr != ""
	})
}
