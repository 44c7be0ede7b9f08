package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/cli"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// One-shot commands say goodbye: relayd logs their leaving as a clean close,
// not as a lost connection.
func TestE2EOneShotsSayGoodbye(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	env := []string{"RELAY_HOME=" + home, "RELAY_URL=" + r.URL(), "CLAUDE_RELAY_SESSION_ID=", "RELAY_CLIENT_ID="}
	peer := spawnAgent(t, r.URL(), "CC-2", home)
	peer.waitState(t, "connected")
	for _, args := range [][]string{{"send", "CC-2", "one"}, {"peers"}, {"send", "--as", "ME", "CC-2", "two"}, {"receive", "--id", "ME"}} {
		if code, out, errs := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%v: %d %q %q", args, code, out, errs)
		}
	}
	host, _ := os.Hostname()
	testkit.WaitFor(t, 10*time.Second, "relayd logs four one-shots leaving", func() bool {
		return strings.Count(r.Logs(), "msg=\"client left\" client="+cli.CLIID(host)) == 2 && strings.Count(r.Logs(), "msg=\"client left\" client=ME") == 2
	})
	for _, ln := range strings.Split(r.Logs(), "\n") {
		if strings.Contains(ln, "client left") && (strings.Contains(ln, "client=ME") || strings.Contains(ln, "client=cli-")) && !strings.Contains(ln, `reason="closed by client"`) {
			t.Errorf("a one-shot left without a goodbye: %s", ln)
		}
	}
}

// send, peers and receive give up at once when nothing listens at the
// relay's address, instead of waiting out --timeout (5 s).
func TestE2EOneShotsFailFastWhenRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := []string{"RELAY_HOME=" + t.TempDir(), "RELAY_URL=ws://" + addr, "CLAUDE_RELAY_SESSION_ID=", "RELAY_CLIENT_ID=", "RELAY_AUTOSTART=off"}
	for _, args := range [][]string{{"send", "CC-2", "x"}, {"peers"}, {"receive", "--id", "CC-2"}} {
		start := time.Now()
		code, _, errs := runCLI(t, env, args...)
		took := time.Since(start)
		if code != cli.ExitUnreachable || !strings.Contains(errs, "relayd") {
			t.Errorf("%v: exit %d %q, want %d and a hint to start relayd", args, code, errs, cli.ExitUnreachable)
		}
		if took > 2*time.Second {
			t.Errorf("%v took %s to say the relay is not there (connection refused at once)", args, took.Round(time.Millisecond))
		}
	}
}

// A message read through relay_receive is read for its sender at once:
// relay_status right after the read says read, without polling.
func TestE2EReadReceiptNoLag(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	a := spawnAgent(t, r.URL(), "CC-1", t.TempDir())
	b := spawnAgent(t, r.URL(), "CC-2", t.TempDir())
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	for i := range 3 {
		_, sc := a.call(t, "relay_send", map[string]any{"to": "CC-2", "message": fmt.Sprint("note ", i)})
		id, _ := sc["id"].(string)
		if got := b.bodies(t, 1); len(got) != 1 {
			t.Fatalf("CC-2 received %v", got)
		}
		if st := receiptState(t, a, id, "CC-2"); st != "read" {
			t.Fatalf("right after CC-2 read message %d, CC-1's relay_status says %q", i, st)
		}
	}
}

// On one machine the MCP entry alone is enough: with nothing listening on
// the loopback relay URL, relay-mcp starts the relayd beside it — one, even
// when many start at once — detached, with its store in $RELAY_HOME/data
// and its log in $RELAY_HOME/logs/relayd.log, and they all talk through it.
func TestE2EAutostartOneRelaydForMany(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	home := t.TempDir()
	url := "ws://" + addr
	t.Cleanup(func() { // runs last: the relayd the test's relay-mcp started
		b, _ := os.ReadFile(filepath.Join(home, "relayd.pid"))
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(home, "logs", "relayd.log"))
			t.Logf("relayd.log:\n%s", tail(string(log), 3000))
		}
	})
	env := []string{"RELAY_HOME=" + home, "RELAY_URL=" + url, "CLAUDE_RELAY_SESSION_ID=", "RELAY_CLIENT_ID=", "RELAY_AUTOSTART=on"}

	// Six one-shot sends and two agents start at once.
	const sends = 6
	codes := make(chan string, sends)
	start := time.Now()
	for i := range sends {
		go func() {
			cmd := exec.Command(bins.relayMCP, "send", "--as", fmt.Sprint("S-", i), "--queue-if-unknown", "CC-2", fmt.Sprint("hello ", i))
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			codes <- fmt.Sprintf("%v %s", err, out)
		}()
	}
	a := spawnAgent(t, url, "CC-1", home, "RELAY_AUTOSTART=on")
	b := spawnAgent(t, url, "CC-2", home, "RELAY_AUTOSTART=on")
	for range sends {
		if res := <-codes; !strings.HasPrefix(res, "<nil> ") || !strings.Contains(res, "CC-2=") {
			t.Errorf("send: %s", res)
		}
	}
	t.Logf("six sends and two agents, relayd started by one of them: %s", time.Since(start).Round(time.Millisecond))
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	if got := b.bodies(t, sends); len(got) != sends {
		t.Fatalf("CC-2 received %d of %d: %v", len(got), sends, got)
	}
	log, _ := os.ReadFile(filepath.Join(home, "logs", "relayd.log"))
	if n := strings.Count(string(log), "relayd listening"); n != 1 {
		t.Fatalf("%d relayd started (want 1); log:\n%s", n, log)
	}
	if !strings.Contains(string(log), "store=journal data="+filepath.Join(home, "data")) || !dirHas(filepath.Join(home, "data"), "relay.journal") {
		t.Errorf("the store is not a new relayd's default, the journal, in $RELAY_HOME/data; log:\n%s", log)
	}
	// doctor names the relayd and where its log is.
	code, out, _ := runCLI(t, env, "doctor")
	if code != 0 || !strings.Contains(out, "autostart: on") || !strings.Contains(out, filepath.Join(home, "logs", "relayd.log")) {
		t.Errorf("doctor: %d\n%s", code, out)
	}

	// Told not to, or with no relayd to start, relay-mcp says so clearly.
	lonely := filepath.Join(t.TempDir(), "relay-mcp")
	copyFile(t, bins.relayMCP, lonely)
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	addr2 := ln2.Addr().String()
	ln2.Close()
	cmd := exec.Command(lonely, "send", "CC-2", "x")
	cmd.Env = append(os.Environ(), "RELAY_HOME="+t.TempDir(), "RELAY_URL=ws://"+addr2, "RELAY_AUTOSTART=on", "PATH=/nonexistent")
	out2, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != cli.ExitUnreachable || !strings.Contains(string(out2), "no relayd beside relay-mcp") || !strings.Contains(string(out2), "RELAY_AUTOSTART=off") {
		t.Errorf("no relayd to start: %v %s", err, out2)
	}
}

func dirHas(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// The README on a fresh clone with a fresh HOME, every step compared with
// what the documents say (scripts/readme-walkthrough.sh; it tests the
// committed HEAD of this checkout).
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("clones the repository and runs make install (-short)")
	}
	for _, tool := range []string{"bash", "git", "make", "curl", "mkfifo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: the README walkthrough needs bash, git, make, curl and mkfifo", tool)
		}
	}
	if out, err := exec.Command("git", "-C", bins.root, "rev-parse", "--git-dir").CombinedOutput(); err != nil {
		t.Skipf("not a git checkout (%s): the walkthrough clones it", strings.TrimSpace(string(out)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(bins.root, "scripts", "readme-walkthrough.sh"))
	// A fresh clone builds as its README says, in its go.work, whatever
	// this test module runs under (make test runs it with GOWORK=off).
	cmd.Env = append(os.Environ(), "GOWORK=")
	out, err := cmd.CombinedOutput()
	t.Logf("scripts/readme-walkthrough.sh:\n%s", out)
	if err != nil {
		t.Fatalf("the README walkthrough failed: %v", err)
	}
}
