package app

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// doctorLines runs relayd doctor and returns its exit code and its report
// as "STATUS name" -> message lines.
func doctorLines(t *testing.T, args ...string) (int, string) {
	t.Helper()
	code, out, errOut := run(t, append([]string{"doctor"}, args...)...)
	t.Logf("relayd doctor %s -> exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	return code, out
}

// hasLine reports whether the report has a line with that status and check
// name whose message matches re.
func hasLine(out, status, name, re string) bool {
	return regexp.MustCompile(`(?m)^` + status + `\s+` + regexp.QuoteMeta(name) + `\s+.*` + re).MatchString(out)
}

func doctorEnv(t *testing.T) {
	t.Helper()
	fakeManagers(t) // HOME in a temp dir; a systemctl that knows no service
	unsetenv(t, "RELAY_HOME", "RELAY_PORT", "RELAY_STORE", "RELAY_TOKENS_FILE", "RELAY_INSECURE")
}

// With a relayd running: every check passes, the store is reported locked
// by it, and the port's owner is found (this process, on Linux).
func TestDoctorWithRunningRelay(t *testing.T) {
	doctorEnv(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	addr, _, stop := serveInProcess(t, "--data-dir", dir)
	defer stop()
	code, out := doctorLines(t, "--listen", addr, "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "all checks passed") {
		t.Fatalf("exit %d", code)
	}
	checks := []struct{ status, name, re string }{
		{"OK", "version", `relayd \S+ \(protocol v1\)`},
		{"OK", "data dir", regexp.QuoteMeta(dir) + " is writable"},
		{"OK", "store", "locked by the running relayd"},
		{"OK", "port", regexp.QuoteMeta(addr) + " is taken by the running relayd"},
		{"OK", "relay", "answers /healthz on " + regexp.QuoteMeta(addr) + ": 0 peers online"},
		{"OK", "token", "none set"},
		{"OK", "clock", "agrees with the relay"},
		{"OK", "service", "no systemd service installed"},
	}
	for _, c := range checks {
		if !hasLine(out, c.status, c.name, c.re) {
			t.Errorf("no %s %s line matching %q", c.status, c.name, c.re)
		}
	}
	if runtime.GOOS == "linux" && !strings.Contains(out, fmt.Sprintf("(pid %d)", os.Getpid())) {
		t.Errorf("the port's owner (pid %d) was not found", os.Getpid())
	}
	// The order is the documented one.
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && (f[0] == "OK" || f[0] == "WARN" || f[0] == "FAIL") {
			names = append(names, f[1])
		}
	}
	if got := strings.Join(names, ","); got != "version,data,store,port,relay,token,clock,service,agents,hooks" {
		t.Errorf("checks in order %s", got)
	}
}

// Nothing running: an empty data directory is fine and left empty (no
// store file made by a check), the port is free, and a missing relay is a
// warning, not a failure.
func TestDoctorNothingRunning(t *testing.T) {
	doctorEnv(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	code, out := doctorLines(t, "--listen", addr, "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("doctor left %s in the empty data directory", entries[0].Name())
	}
	if !hasLine(out, "OK", "store", `no store in .* yet: relayd makes its journal store there \(relay\.journal\)`) || !hasLine(out, "OK", "port", "is free") ||
		!hasLine(out, "WARN", "relay", "no relayd is running") || !strings.Contains(out, "fix: start it") ||
		!hasLine(out, "WARN", "data dir", "other users can read it \\(mode 755\\)") || !strings.Contains(out, "fix: chmod 700 "+dir) {
		t.Error("missing lines")
	}
	// A data dir that does not exist yet is fine: relayd creates it.
	if code, out = doctorLines(t, "--listen", addr, "--data-dir", filepath.Join(dir, "new", "data")); code != 0 || !hasLine(out, "OK", "data dir", "does not exist yet") {
		t.Errorf("new data dir: exit %d", code)
	}
}

func TestDoctorFindsProblems(t *testing.T) {
	doctorEnv(t)
	file := filepath.Join(t.TempDir(), "not-a-dir")
	os.WriteFile(file, []byte("x"), 0o600)

	// Something that is not relayd holds the port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 512)) // the request, then an answer that is not HTTP
			c.Write([]byte("SSH-2.0-not-http\r\n"))
			c.Close()
		}
	}()
	code, out := doctorLines(t, "--listen", ln.Addr().String(), "--data-dir", file)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !hasLine(out, "FAIL", "data dir", "is a file, not a directory") {
		t.Error("data dir that is a file not reported")
	}
	if !hasLine(out, "FAIL", "port", "is taken by .*which does not answer as relayd") || !strings.Contains(out, "fix: stop that program, or run relayd on another port") {
		t.Error("port taken by another program not reported with its fix")
	}
	if runtime.GOOS == "linux" && !strings.Contains(out, fmt.Sprintf("(pid %d)", os.Getpid())) {
		t.Errorf("the port's owner (pid %d) was not named", os.Getpid())
	}

	// An address of no interface here, beyond loopback, without a token.
	code, out = doctorLines(t, "--listen", "192.0.2.1:9999", "--store", "memory")
	if code != 1 || !hasLine(out, "FAIL", "port", "cannot listen on 192.0.2.1:9999") ||
		!hasLine(out, "FAIL", "token", "refusing to listen on 192.0.2.1:9999 without a token") {
		t.Errorf("exit %d", code)
	}
}

func TestDoctorChecksTheToken(t *testing.T) {
	doctorEnv(t)
	t.Setenv("RELAY_TOKEN", "the-relays-token-0123456789")
	addr, _, stop := serveInProcess(t, "--store", "memory")
	defer stop()
	if code, out := doctorLines(t, "--listen", addr, "--store", "memory"); code != 0 || !hasLine(out, "OK", "token", "the running relay accepts this token") {
		t.Errorf("right token: exit %d", code)
	}
	t.Setenv("RELAY_TOKEN", "some-other-token-0123456789")
	if code, out := doctorLines(t, "--listen", addr, "--store", "memory"); code != 1 || !hasLine(out, "FAIL", "token", "the running relay refuses this token") {
		t.Errorf("wrong token: exit %d", code)
	}
	t.Setenv("RELAY_TOKEN", "")
	if code, out := doctorLines(t, "--listen", addr, "--store", "memory"); code != 0 || !hasLine(out, "WARN", "token", "requires a token, but none is set") {
		t.Errorf("no token: exit %d", code)
	}
}

// The data directory locked by a relayd that serves another port: doctor
// fails the store check (relayd --port … would refuse to start), names the
// holder and where it serves.
func TestDoctorStoreLockedByAnotherRelayd(t *testing.T) {
	doctorEnv(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	addr, _, stop := serveInProcess(t, "--data-dir", dir)
	defer stop()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	other := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	code, out := doctorLines(t, "--listen", other, "--data-dir", dir)
	if code != 1 || strings.Contains(out, "all checks passed") {
		t.Errorf("exit %d, want 1", code)
	}
	if !hasLine(out, "FAIL", "store", regexp.QuoteMeta(dir)+" is in use by .*which does not serve "+regexp.QuoteMeta(other)+": a relayd started with these flags would refuse to start") {
		t.Error("the lock held by the relayd on another port is not a failure")
	}
	if runtime.GOOS == "linux" && (!strings.Contains(out, fmt.Sprintf("relayd pid %d", os.Getpid())) || !strings.Contains(out, "serves this store on port "+port+" already")) {
		t.Errorf("the holder (pid %d, port %s) is not named", os.Getpid(), port)
	}
}

// doctor says whether an agent starts relay-mcp and whether its Claude Code
// hooks are installed.
func TestDoctorAgentSetup(t *testing.T) {
	doctorEnv(t)
	home, _ := os.UserHomeDir()
	unsetenv(t, "CLAUDE_CONFIG_DIR", "CODEX_HOME")
	t.Chdir(home)
	_, out := doctorLines(t, "--store", "memory", "--port", "1")
	if !hasLine(out, "WARN", "agents", "no agent starts relay-mcp") || !hasLine(out, "WARN", "hooks", "hooks are not installed") {
		t.Error("no agent and no hooks not reported")
	}
	bin := filepath.Join(home, "relay-mcp")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(home, ".claude.json"), []byte(`{"mcpServers":{"relay":{"type":"stdio","command":"`+bin+`","args":[]}}}`), 0o600)
	os.MkdirAll(filepath.Join(home, ".claude"), 0o700)
	os.WriteFile(filepath.Join(home, ".claude", "settings.json"), []byte(`{"hooks":{"Stop":[{"hooks":[{"type":"command","command":"relay-mcp hook claude-code Stop"}]}]}}`), 0o600)
	_, out = doctorLines(t, "--store", "memory", "--port", "1")
	if !hasLine(out, "OK", "agents", regexp.QuoteMeta("Claude Code (~/.claude.json) starts relay-mcp ("+bin+")")) || !hasLine(out, "OK", "hooks", `installed in ~/\.claude/settings\.json \(Stop\)`) {
		t.Error("the Claude Code entry and its hook not reported")
	}
}
