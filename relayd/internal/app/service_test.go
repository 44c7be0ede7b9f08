package app

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/relayd/internal/service"
)

// fakeManagers puts a recording systemctl and launchctl first on PATH (there
// is no systemd user session or launchd in a test) and points HOME and
// XDG_CONFIG_HOME at a temp dir. The stand-ins keep a state file, so
// is-active and print answer what enable, disable, bootstrap and bootout
// did. It returns the home dir and a function reading the recorded calls.
func fakeManagers(t *testing.T) (home string, calls func() []string) {
	t.Helper()
	dir := t.TempDir()
	home = filepath.Join(dir, "home")
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{home, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	log, state := filepath.Join(dir, "calls"), filepath.Join(dir, "state")
	systemctl := `#!/bin/sh
echo "systemctl $*" >> "$FAKE_LOG"
case "$*" in
  *"enable --now"*|*restart*) echo active > "$FAKE_STATE" ;;
  *"disable --now"*) echo inactive > "$FAKE_STATE" ;;
  *is-active*) s=$(cat "$FAKE_STATE" 2>/dev/null || echo inactive); echo "$s"; [ "$s" = active ] || exit 3 ;;
esac
`
	launchctl := `#!/bin/sh
echo "launchctl $*" >> "$FAKE_LOG"
case "$1" in
  bootstrap) echo running > "$FAKE_STATE" ;;
  bootout) [ -f "$FAKE_STATE" ] || { echo "Boot-out failed: 3: No such process" >&2; exit 3; }; rm -f "$FAKE_STATE" ;;
  print) [ -f "$FAKE_STATE" ] || { echo "Could not find service" >&2; exit 113; }
         printf '%s = {\n\tstate = running\n\tpid = 4242\n}\n' "$2" ;;
esac
`
	for name, script := range map[string]string{"systemctl": systemctl, "launchctl": launchctl} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "cfg"))
	t.Setenv("FAKE_LOG", log)
	t.Setenv("FAKE_STATE", state)
	unsetenv(t, "RELAY_LISTEN", "RELAY_DATA_DIR", "RELAY_TOKEN_FILE", "RELAY_TOKEN")
	return home, func() []string {
		b, _ := os.ReadFile(log)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
}

// fakeRelayd is an executable file standing for the relayd binary path.
func fakeRelayd(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "opt bin", "relayd") // a space, to see the quoting
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServiceSystemdInstallStatusUninstall(t *testing.T) {
	home, calls := fakeManagers(t)
	bin := fakeRelayd(t, home)

	code, out, errOut := run(t, "service", "status", "--manager", "systemd")
	if code != 3 || !strings.Contains(out, "not installed") || !strings.Contains(errOut, "relayd service install") {
		t.Fatalf("status before install: exit %d\n%s%s", code, out, errOut)
	}

	// A relay to answer /healthz where the unit says it listens.
	addr, _, stop := serveInProcess(t, "--store", "memory")
	defer stop()
	code, out, errOut = run(t, "service", "install", "--manager", "systemd", "--binary", bin,
		"--listen", addr, "--data-dir", "~/relay data", "--", "--retention", "720h")
	if code != 0 {
		t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
	}
	unitPath := filepath.Join(home, "cfg", "systemd", "user", "relayd.service")
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatalf("no unit written: %v\n%s", err, out)
	}
	wantExec := `ExecStart="` + bin + `" --listen ` + addr + ` --data-dir "` + filepath.Join(home, "relay data") + `" --retention 720h`
	if !strings.Contains(string(unit), wantExec+"\n") {
		t.Errorf("unit has no\n%s\n---\n%s", wantExec, unit)
	}
	for _, w := range []string{"Restart=on-failure", "NoNewPrivileges=yes", "WantedBy=default.target"} {
		if !strings.Contains(string(unit), w) {
			t.Errorf("unit lacks %s", w)
		}
	}
	want := []string{"systemctl --user daemon-reload", "systemctl --user enable --now relayd.service"}
	if got := calls(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("ran %q, want %q", got, want)
	}
	if !strings.Contains(out, "journalctl --user -u relayd") || !strings.Contains(out, "enable-linger") {
		t.Errorf("install output does not say where logs are or how to linger:\n%s", out)
	}

	code, out, errOut = run(t, "service", "status", "--manager", "systemd")
	if code != 0 || !strings.Contains(out, "state: active") || !strings.Contains(out, "health: ok") ||
		!strings.Contains(out, "on "+addr) || !strings.Contains(out, "--retention 720h") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}

	// Installing again (an upgrade) restarts instead of enable --now.
	if code, out, errOut = run(t, "service", "install", "--manager", "systemd", "--binary", bin); code != 0 {
		t.Fatalf("reinstall: exit %d\n%s%s", code, out, errOut)
	}
	if got := calls(); got[len(got)-1] != "systemctl --user restart relayd.service" {
		t.Errorf("reinstall ran %q", got)
	}

	if code, out, errOut = run(t, "service", "uninstall", "--manager", "systemd"); code != 0 {
		t.Fatalf("uninstall: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(unitPath); !os.IsNotExist(err) {
		t.Errorf("unit still there after uninstall: %v", err)
	}
	got := calls()
	if tail := strings.Join(got[len(got)-2:], "|"); tail != "systemctl --user disable --now relayd.service|systemctl --user daemon-reload" {
		t.Errorf("uninstall ran %q", got)
	}
	if code, out, _ = run(t, "service", "uninstall", "--manager", "systemd"); code != 0 || !strings.Contains(out, "not installed") {
		t.Errorf("second uninstall: exit %d %s", code, out)
	}
}

func TestServiceLaunchdInstall(t *testing.T) {
	home, calls := fakeManagers(t)
	bin := fakeRelayd(t, home)
	code, out, errOut := run(t, "service", "install", "--manager", "launchd", "--binary", bin, "--listen", "127.0.0.1:7777")
	if code != 0 {
		t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
	}
	path := filepath.Join(home, "Library", "LaunchAgents", service.Label+".plist")
	plist, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	args, err := service.PlistArgs(plist)
	if err != nil || strings.Join(args, " ") != bin+" --listen 127.0.0.1:7777" {
		t.Errorf("ProgramArguments %q (%v)", args, err)
	}
	logDir := filepath.Join(home, "Library", "Logs", "claude-relay")
	if !strings.Contains(string(plist), "<string>"+logDir+"/relayd.log</string>") {
		t.Errorf("plist does not log to %s:\n%s", logDir, plist)
	}
	if fi, err := os.Stat(logDir); err != nil || !fi.IsDir() {
		t.Errorf("log folder not created: %v", err)
	}
	uid := os.Getuid()
	want := []string{
		"launchctl enable gui/" + strconv.Itoa(uid) + "/com.claude-relay.relayd",
		"launchctl bootstrap gui/" + strconv.Itoa(uid) + " " + path,
	}
	if got := calls(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("ran %q, want %q", got, want)
	}
	// Nothing answers on 7777: running, but not healthy.
	code, out, errOut = run(t, "service", "status", "--manager", "launchd")
	if code != 1 || !strings.Contains(out, "state: running (pid 4242)") || !strings.Contains(out, "health: FAIL") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = run(t, "service", "uninstall", "--manager", "launchd"); code != 0 {
		t.Fatalf("uninstall: exit %d\n%s%s", code, out, errOut)
	}
	if got := calls(); got[len(got)-1] != "launchctl bootout gui/"+strconv.Itoa(uid)+"/com.claude-relay.relayd" {
		t.Errorf("uninstall ran %q", got)
	}
	if code, out, _ = run(t, "service", "status", "--manager", "launchd"); code != 3 || !strings.Contains(out, "not installed") {
		t.Errorf("status after uninstall: exit %d %s", code, out)
	}
}

func TestServiceDryRunChangesNothing(t *testing.T) {
	home, calls := fakeManagers(t)
	bin := fakeRelayd(t, home)
	code, out, errOut := run(t, "service", "install", "--manager", "systemd", "--dry-run", "--binary", bin)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, w := range []string{"would write " + filepath.Join(home, "cfg", "systemd", "user", "relayd.service"),
		"[Service]", "would run: systemctl --user daemon-reload", "would run: systemctl --user enable --now relayd.service"} {
		if !strings.Contains(out, w) {
			t.Errorf("dry run does not say %q:\n%s", w, out)
		}
	}
	if got := calls(); len(got) != 1 || got[0] != "" {
		t.Errorf("dry run ran %q", got)
	}
	if _, err := os.Stat(filepath.Join(home, "cfg")); !os.IsNotExist(err) {
		t.Errorf("dry run wrote files: %v", err)
	}
}

func TestServiceInstallErrors(t *testing.T) {
	home, calls := fakeManagers(t)
	bin := fakeRelayd(t, home)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--binary", bin, "--listen", "0.0.0.0:9999"}, "needs a token"},
		{[]string{"--binary", bin, "--listen", "nonsense"}, "is not host:port"},
		{[]string{"--binary", filepath.Join(home, "nope")}, "is not an executable file"},
		{[]string{"--binary", bin, "--manager", "upstart"}, "use systemd or launchd"},
	} {
		code, _, errOut := run(t, append([]string{"service", "install"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("install %q: exit %d, stderr %q, want %q", tc.args, code, errOut, tc.want)
		}
	}
	if got := calls(); len(got) != 1 || got[0] != "" {
		t.Errorf("refused installs ran %q", got)
	}
	// A token file makes a network listener acceptable.
	tok := filepath.Join(home, "token")
	os.WriteFile(tok, []byte("secret\n"), 0o600)
	if code, out, errOut := run(t, "service", "install", "--manager", "systemd", "--dry-run", "--binary", bin,
		"--listen", "0.0.0.0:9999", "--token-file", tok); code != 0 || !strings.Contains(out, "--token-file "+tok) {
		t.Errorf("with a token file: exit %d\n%s%s", code, out, errOut)
	}
}

// A systemctl that cannot reach a user bus: the error says what to do.
func TestServiceNoUserSession(t *testing.T) {
	home, _ := fakeManagers(t)
	bin := fakeRelayd(t, home)
	os.WriteFile(filepath.Join(filepath.Dir(os.Getenv("FAKE_LOG")), "bin", "systemctl"),
		[]byte("#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n"), 0o755)
	code, _, errOut := run(t, "service", "install", "--manager", "systemd", "--binary", bin)
	if code != 1 || !strings.Contains(errOut, "no systemd user session") || !strings.Contains(errOut, "loginctl enable-linger") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// unsetenv removes environment variables for the test (an empty value is
// not the same: a flag would read it).
func unsetenv(t *testing.T, names ...string) {
	for _, n := range names {
		t.Setenv(n, "") // restores the old value after the test
		os.Unsetenv(n)
	}
}

// On a machine without relayd, a tunnel to the relay's host: the template
// unit, a drop-in for another port, and systemd's escaped instance name;
// status asks /healthz through the tunnel's local end.
func TestServiceTunnelSystemd(t *testing.T) {
	home, calls := fakeManagers(t)
	// Stands for the relay at the far end of the tunnel.
	addr, _, stop := serveInProcess(t, "--store", "memory")
	defer stop()
	_, port, _ := strings.Cut(addr, ":")
	code, out, errOut := run(t, "service", "install", "--manager", "systemd", "--tunnel", "you@relay-host", "--tunnel-port", port)
	if code != 0 {
		t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
	}
	unitDir := filepath.Join(home, "cfg", "systemd", "user")
	inst := `relay-tunnel@you\x40relay\x2dhost.service`
	unit, err := os.ReadFile(filepath.Join(unitDir, "relay-tunnel@.service"))
	if err != nil || !strings.Contains(string(unit), "-o ExitOnForwardFailure=yes") || !strings.Contains(string(unit), " %I\n") {
		t.Fatalf("template unit: %v\n%s", err, unit)
	}
	dropIn, err := os.ReadFile(filepath.Join(unitDir, inst+".d", "port.conf"))
	if err != nil || string(dropIn) != "[Service]\nEnvironment=RELAY_TUNNEL_PORT="+port+"\n" {
		t.Errorf("drop-in: %v %q", err, dropIn)
	}
	want := []string{"systemctl --user daemon-reload", "systemctl --user enable " + inst, "systemctl --user restart " + inst}
	if got := calls(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("ran %q, want %q", got, want)
	}
	if !strings.Contains(out, "ran: systemctl --user enable 'relay-tunnel@you\\x40relay\\x2dhost.service'") {
		t.Errorf("the commands shown cannot be pasted into a shell:\n%s", out)
	}
	code, out, errOut = run(t, "service", "status", "--manager", "systemd", "--tunnel", "you@relay-host", "--tunnel-port", port)
	if code != 0 || !strings.Contains(out, "tunnel to you@relay-host (systemd): installed") || !strings.Contains(out, "health: ok") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = run(t, "service", "uninstall", "--manager", "systemd", "--tunnel", "you@relay-host"); code != 0 {
		t.Fatalf("uninstall: exit %d\n%s%s", code, out, errOut)
	}
	if left, _ := filepath.Glob(filepath.Join(unitDir, "*")); len(left) != 0 {
		t.Errorf("left behind: %q", left)
	}
	if got := calls(); got[len(got)-2] != "systemctl --user disable --now "+inst {
		t.Errorf("uninstall ran %q", got)
	}
}

func TestServiceTunnelLaunchd(t *testing.T) {
	home, _ := fakeManagers(t)
	code, out, errOut := run(t, "service", "install", "--manager", "launchd", "--tunnel", "relay-host", "--tunnel-port", "7777")
	if code != 0 {
		t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
	}
	plist, err := os.ReadFile(filepath.Join(home, "Library", "LaunchAgents", service.TunnelLabel+".plist"))
	if err != nil {
		t.Fatal(err)
	}
	args, _ := service.PlistArgs(plist)
	if got := strings.Join(args, " "); !strings.HasSuffix(got, "-o ServerAliveInterval=15 -o ServerAliveCountMax=3 -o ExitOnForwardFailure=yes -o BatchMode=yes -L 127.0.0.1:7777:127.0.0.1:7777 relay-host") {
		t.Errorf("ProgramArguments %s", got)
	}
	// Nothing answers on 7777 through the "tunnel": running, not healthy.
	code, out, _ = run(t, "service", "status", "--manager", "launchd", "--tunnel", "relay-host", "--tunnel-port", "7777")
	if code != 1 || !strings.Contains(out, "health: FAIL") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	for _, bad := range []string{"-oProxyCommand=x", "a b"} {
		if code, _, errOut := run(t, "service", "install", "--tunnel", bad); code != 2 || !strings.Contains(errOut, "is not an SSH destination") {
			t.Errorf("--tunnel %q: exit %d %s", bad, code, errOut)
		}
	}
}

func TestStableBinaryFollowsHomebrewUpgrades(t *testing.T) {
	prefix := t.TempDir()
	cellar := filepath.Join(prefix, "Cellar", "relayd", "0.1.0", "bin", "relayd")
	opt := filepath.Join(prefix, "opt", "relayd", "bin", "relayd")
	if got := stableBinary(cellar); got != cellar {
		t.Errorf("without an opt link: %s", got)
	}
	os.MkdirAll(filepath.Dir(opt), 0o755)
	os.WriteFile(opt, []byte("#!/bin/sh\n"), 0o755)
	if got := stableBinary(cellar); got != opt {
		t.Errorf("stableBinary(%s) = %s, want %s", cellar, got, opt)
	}
	if got := stableBinary("/home/u/go/bin/relayd"); got != "/home/u/go/bin/relayd" {
		t.Errorf("a go install path changed: %s", got)
	}
}
