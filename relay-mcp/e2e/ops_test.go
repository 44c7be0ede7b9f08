package e2e

// End-to-end checks of how relay-mcp and relayd are installed and operated:
// version stamping, `install`, `doctor`, and the MCP Inspector CLI.

import (
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The stamp TestMain builds both binaries with, as `make build` does.
const (
	stampVersion = "v9.8.7-test"
	stampCommit  = "abc1234"
	stampDate    = "2026-01-02T03:04:05Z"
)

// testStamp is the -ldflags of both binaries: they share the buildinfo package.
const testStamp = "-X " + stampPkg + ".Version=" + stampVersion + " -X " + stampPkg + ".Commit=" + stampCommit + " -X " + stampPkg + ".Date=" + stampDate

const stampPkg = "github.com/claude-relay/claude-relay/internal/buildinfo"

// `version` of a binary built with -ldflags prints the stamped values (the
// unstamped fallback to the Go build information is tested in package
// buildinfo).
func TestVersionStamped(t *testing.T) {
	for _, bin := range []string{bins.relayMCP, bins.relayd} {
		out, err := exec.Command(bin, "version").CombinedOutput()
		name := "relay-mcp"
		if bin == bins.relayd {
			name = "relayd"
		}
		want := name + " " + stampVersion + " (commit " + stampCommit + ", built " + stampDate + ", go"
		if err != nil || !strings.HasPrefix(string(out), want) || !strings.HasSuffix(strings.TrimSpace(string(out)), "protocol v1)") {
			t.Errorf("%s version: %v %q; want prefix %q", name, err, out, want)
		}
	}
}

// doctor runs `relay-mcp doctor` with env added to this process's.
func doctor(t *testing.T, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bins.relayMCP, "doctor", "--timeout", "5s")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

// lines returns the doctor lines with status st.
func statusLines(out, st string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, st+" ") {
			ls = append(ls, l)
		}
	}
	return ls
}

// The relayd binary itself: doctor names its process and its stamp.
func TestDoctorAllOK(t *testing.T) {
	r := relaytest.StartBinary(t, bins.relayd, "--store", "memory")
	home := t.TempDir()
	// A running session holds CC-1; doctor as CC-1 must leave it online.
	a := spawnAgent(t, r.URL(), "CC-1", home)
	a.waitState(t, "connected")
	code, out := doctor(t, "RELAY_URL="+r.URL(), "RELAY_HOME="+home, "RELAY_TOKEN=", "RELAY_TOKEN_FILE=", "CLAUDE_RELAY_SESSION_ID=CC-1")
	t.Logf("doctor:\n%s", out)
	if code != 0 || len(statusLines(out, "FAIL")) != 0 || !strings.Contains(out, "all checks passed") {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"OK    this binary: relay-mcp " + stampVersion + " (commit " + stampCommit,
		"OK    TCP connect " + r.Addr,
		"OK    WebSocket upgrade at /v1/ws",
		"the id is online on another connection (a running session) and doctor did not take it over",
		`OK    versions: relay-mcp ` + stampVersion + ` speaks protocol v1; relay "relayd ` + stampVersion + `" speaks v1: compatible`,
		"OK    token: none set, and the relay asks for none",
		"OK    SSH tunnel: not needed, relayd runs on this machine",
		"sessions/registry.json: 1 session(s)",
		"is writable",
		"OK    clock: within",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	// The session is still the one online: doctor did not take CC-1 over.
	_, st := a.call(t, "relay_status", nil)
	if st["state"] != "connected" || st["reconnects"].(float64) != 0 {
		t.Fatalf("the running session was disturbed: %v", st)
	}
	// As its own id (cli-HOST), doctor gets a welcome of its own.
	code, out = doctor(t, "RELAY_URL="+r.URL(), "RELAY_HOME="+home, "RELAY_TOKEN=", "RELAY_TOKEN_FILE=", "CLAUDE_RELAY_SESSION_ID=", "RELAY_CLIENT_ID=")
	if code != 0 || !strings.Contains(out, `welcome from "relayd `+stampVersion+`", protocol v1`) {
		t.Fatalf("own id: %d\n%s", code, out)
	}
}

func TestDoctorRelayDown(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	r.Stop() // a port that was a relay's a moment ago: nothing listens now
	home := t.TempDir()
	code, out := doctor(t, "RELAY_URL="+r.URL(), "RELAY_HOME="+home, "RELAY_TOKEN=", "RELAY_TOKEN_FILE=")
	t.Logf("doctor:\n%s", out)
	fails := statusLines(out, "FAIL")
	if code != 1 || len(fails) != 1 || !strings.Contains(fails[0], "TCP connect "+r.Addr+": connection refused") {
		t.Fatalf("exit %d, fails %q", code, fails)
	}
	if !strings.Contains(out, "fix: nothing listens on "+r.Addr+": start relayd") || !strings.Contains(out, "ssh -N -L") {
		t.Fatal("the fix does not say to start relayd or open the tunnel")
	}
	// Local checks still run.
	if !strings.Contains(out, "OK    inbox directory") || !strings.Contains(out, "SKIP  clock") {
		t.Fatal("local checks missing")
	}
}

func TestDoctorWrongToken(t *testing.T) {
	t.Setenv("RELAY_TOKEN", "the-relays-token") // relayd reads its environment
	r := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	code, out := doctor(t, "RELAY_URL="+r.URL(), "RELAY_HOME="+home, "RELAY_TOKEN=a-wrong-token")
	t.Logf("doctor:\n%s", out)
	fails := statusLines(out, "FAIL")
	if code != 1 || len(fails) != 1 || !strings.Contains(fails[0], "token: the relay refused the token from RELAY_TOKEN (HTTP 401)") {
		t.Fatalf("exit %d, fails %q", code, fails)
	}
	code, out = doctor(t, "RELAY_URL="+r.URL(), "RELAY_HOME="+home, "RELAY_TOKEN=")
	if code != 1 || !strings.Contains(out, "token: the relay requires one and none is set (HTTP 401)") || !strings.Contains(out, "fix: set RELAY_TOKEN") {
		t.Fatalf("no token: %d\n%s", code, out)
	}
	tf := filepath.Join(home, "token")
	os.WriteFile(tf, []byte("the-relays-token\n"), 0o600)
	code, out = doctor(t, "RELAY_URL="+r.URL(), "RELAY_HOME="+home, "RELAY_TOKEN=", "RELAY_TOKEN_FILE="+tf)
	if code != 0 || !strings.Contains(out, "OK    token accepted (from --token-file "+tf+")") {
		t.Fatalf("right token: %d\n%s", code, out)
	}
}

func TestDoctorCorruptRegistry(t *testing.T) {
	r := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	p := filepath.Join(home, "sessions", "registry.json")
	os.MkdirAll(filepath.Dir(p), 0o700)
	corrupt := []byte(`{"version":1,"sessions":{"CC-1":{"pid":12`)
	os.WriteFile(p, corrupt, 0o600)
	code, out := doctor(t, "RELAY_URL="+r.URL(), "RELAY_HOME="+home, "RELAY_TOKEN=", "RELAY_TOKEN_FILE=")
	t.Logf("doctor:\n%s", out)
	fails := statusLines(out, "FAIL")
	if code != 1 || len(fails) != 1 || !strings.Contains(fails[0], "registry.json is corrupt: registry is not valid JSON") || !strings.Contains(out, "mv "+p+" "+p+".broken") {
		t.Fatalf("exit %d, fails %q", code, fails)
	}
	if got, _ := os.ReadFile(p); string(got) != string(corrupt) {
		t.Fatal("doctor changed the registry")
	}
	// A session marked online whose process is gone is a warning, not a failure.
	host, _ := os.Hostname()
	os.WriteFile(p, []byte(`{"version":1,"sessions":{"CC-9":{"id":"CC-9","host":"`+host+`","pid":999999999,"online":true}}}`), 0o600)
	code, out = doctor(t, "RELAY_URL="+r.URL(), "RELAY_HOME="+home, "RELAY_TOKEN=", "RELAY_TOKEN_FILE=")
	if code != 0 || !strings.Contains(out, "WARN  registry: marked online but their process is gone: CC-9 (pid 999999999)") {
		t.Fatalf("stale entry: %d\n%s", code, out)
	}
}
