package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/claude-relay/claude-relay/internal/atomicfile"
)

// Kinds of service manager.
const (
	Systemd = "systemd"
	Launchd = "launchd"
)

// Manager installs, removes and inspects relayd's user service. Its fields
// say where files go and how commands run, so tests point them at a temp
// dir and a recording systemctl.
type Manager struct {
	// Kind is Systemd or Launchd.
	Kind string
	// Home is the user's home directory.
	Home string
	// ConfigHome is $XDG_CONFIG_HOME; empty means Home/.config.
	ConfigHome string
	// UID is the user id for launchctl's gui/UID domain.
	UID int
	// DryRun prints what would be written and run, and changes nothing.
	DryRun bool
	// Tunnel, when set, makes the Manager handle the SSH tunnel to the
	// relayd on this SSH destination instead of relayd itself.
	Tunnel string
	// TunnelPort is the port forwarded by the tunnel, on both ends.
	// Defaults to 9999.
	TunnelPort int
	// Out receives what is done, one line each.
	Out io.Writer
}

// Path is where the unit (or plist) lives. For a systemd tunnel it is the
// template unit relay-tunnel@.service that every tunnel instance shares.
func (m *Manager) Path() string {
	if m.Kind == Launchd {
		return filepath.Join(m.Home, "Library", "LaunchAgents", m.name()+".plist")
	}
	if m.Tunnel != "" {
		return filepath.Join(m.unitDir(), TunnelUnit)
	}
	return filepath.Join(m.unitDir(), Unit)
}

func (m *Manager) unitDir() string {
	cfg := m.ConfigHome
	if cfg == "" {
		cfg = filepath.Join(m.Home, ".config")
	}
	return filepath.Join(cfg, "systemd", "user")
}

// name is what systemctl or launchctl calls the service: relayd.service,
// relay-tunnel@HOST.service, or the launchd label.
func (m *Manager) name() string {
	switch {
	case m.Kind == Launchd && m.Tunnel != "":
		return TunnelLabel
	case m.Kind == Launchd:
		return Label
	case m.Tunnel != "":
		return TunnelInstance(m.Tunnel)
	}
	return Unit
}

func (m *Manager) tunnelPort() int {
	if m.TunnelPort > 0 {
		return m.TunnelPort
	}
	return 9999
}

// dropIn is the systemd drop-in that sets a tunnel instance's port, when
// it is not the template's 9999.
func (m *Manager) dropIn() string {
	return filepath.Join(m.unitDir(), TunnelInstance(m.Tunnel)+".d", "port.conf")
}

// LogDir is where launchd writes relayd's output (systemd uses the journal).
func (m *Manager) LogDir() string { return filepath.Join(m.Home, "Library", "Logs", "claude-relay") }

// Logs says how to read the service's logs.
func (m *Manager) Logs() string {
	switch {
	case m.Kind == Launchd && m.Tunnel != "":
		return "tail -f " + filepath.Join(m.LogDir(), "tunnel.log")
	case m.Kind == Launchd:
		return "tail -f " + filepath.Join(m.LogDir(), "relayd.log")
	case m.Tunnel != "":
		return "journalctl --user -u '" + m.name() + "' -f"
	}
	return "journalctl --user -u relayd -f"
}

func (m *Manager) target() string { return "gui/" + strconv.Itoa(m.UID) }

// Render returns the unit (or plist) that runs spec; a tunnel's ignores it.
func (m *Manager) Render(spec Spec) ([]byte, error) {
	switch {
	case m.Kind == Launchd && m.Tunnel != "":
		return TunnelPlist(m.Tunnel, m.tunnelPort(), m.LogDir())
	case m.Kind == Launchd:
		return LaunchdPlist(spec, m.LogDir())
	case m.Tunnel != "":
		return TunnelSystemdUnit()
	}
	return SystemdUnit(spec)
}

// Install writes the service file for spec, loads it and starts it. A
// service installed before is replaced and restarted (an upgrade, or new
// flags).
func (m *Manager) Install(ctx context.Context, spec Spec) error {
	if m.Tunnel == "" && !filepath.IsAbs(spec.Binary) {
		return fmt.Errorf("the service needs relayd's absolute path, not %q", spec.Binary)
	}
	content, err := m.Render(spec)
	if err != nil {
		return err
	}
	path := m.Path()
	_, statErr := os.Stat(path)
	existed := statErr == nil
	// A systemd tunnel's port other than 9999 goes in a drop-in of its
	// instance; an old drop-in goes when the port is back to 9999.
	var dropIn []byte
	if m.Kind == Systemd && m.Tunnel != "" && m.tunnelPort() != 9999 {
		dropIn = fmt.Appendf(nil, "[Service]\nEnvironment=RELAY_TUNNEL_PORT=%d\n", m.tunnelPort())
	}
	var cmds [][]string
	switch {
	case m.Kind == Launchd:
		if existed {
			cmds = append(cmds, []string{"launchctl", "bootout", m.target() + "/" + m.name()})
		}
		cmds = append(cmds,
			[]string{"launchctl", "enable", m.target() + "/" + m.name()},
			[]string{"launchctl", "bootstrap", m.target(), path})
	case existed || m.Tunnel != "":
		// restart, unlike enable --now, also restarts a running service
		// with its new file (an upgrade, other flags, another port).
		cmds = append(cmds, []string{"systemctl", "--user", "daemon-reload"},
			[]string{"systemctl", "--user", "enable", m.name()}, []string{"systemctl", "--user", "restart", m.name()})
	default:
		cmds = append(cmds, []string{"systemctl", "--user", "daemon-reload"}, []string{"systemctl", "--user", "enable", "--now", m.name()})
	}

	if m.DryRun {
		fmt.Fprintf(m.Out, "would write %s:\n%s\n", path, content)
		if dropIn != nil {
			fmt.Fprintf(m.Out, "would write %s:\n%s\n", m.dropIn(), dropIn)
		}
		if m.Kind == Launchd {
			fmt.Fprintf(m.Out, "would create %s\n", m.LogDir())
		}
		for _, c := range cmds {
			fmt.Fprintf(m.Out, "would run: %s\n", shellJoin(c))
		}
		return nil
	}
	if m.Kind == Launchd {
		if err := os.MkdirAll(m.LogDir(), 0o700); err != nil {
			return fmt.Errorf("create the log folder: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := writeAtomic(path, content); err != nil {
		return err
	}
	fmt.Fprintf(m.Out, "wrote %s\n", path)
	if m.Kind == Systemd && m.Tunnel != "" {
		if dropIn == nil {
			os.RemoveAll(filepath.Dir(m.dropIn()))
		} else {
			if err := os.MkdirAll(filepath.Dir(m.dropIn()), 0o755); err != nil {
				return fmt.Errorf("create %s: %w", filepath.Dir(m.dropIn()), err)
			}
			if err := writeAtomic(m.dropIn(), dropIn); err != nil {
				return err
			}
			fmt.Fprintf(m.Out, "wrote %s\n", m.dropIn())
		}
	}
	for i, c := range cmds {
		err := m.run(ctx, c)
		if err != nil && m.Kind == Launchd && i == 0 && existed {
			continue // bootout of a service that was not loaded: nothing to stop
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Uninstall stops the service and removes its file. Not installed is not
// an error: there is nothing to do.
func (m *Manager) Uninstall(ctx context.Context) error {
	path := m.Path()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(m.Out, "%s is not installed (no %s); nothing to do\n", m.name(), path)
		return nil
	}
	var before, after [][]string
	if m.Kind == Launchd {
		before = [][]string{{"launchctl", "bootout", m.target() + "/" + m.name()}}
	} else {
		before = [][]string{{"systemctl", "--user", "disable", "--now", m.name()}}
		after = [][]string{{"systemctl", "--user", "daemon-reload"}}
	}
	// The tunnel template serves every tunnel instance: it goes with the
	// last one.
	remove := []string{path}
	if m.Kind == Systemd && m.Tunnel != "" {
		remove = []string{filepath.Dir(m.dropIn())}
		others, _ := filepath.Glob(filepath.Join(m.unitDir(), "*.wants", "relay-tunnel@*.service"))
		if len(others) == 0 || (len(others) == 1 && filepath.Base(others[0]) == m.name()) {
			remove = append(remove, path)
		}
	}
	if m.DryRun {
		for _, c := range before {
			fmt.Fprintf(m.Out, "would run: %s\n", shellJoin(c))
		}
		for _, p := range remove {
			fmt.Fprintf(m.Out, "would remove %s\n", p)
		}
		for _, c := range after {
			fmt.Fprintf(m.Out, "would run: %s\n", shellJoin(c))
		}
		return nil
	}
	for _, c := range before {
		if err := m.run(ctx, c); err != nil {
			// Stopping failed (not loaded, no user session): the file still
			// goes, so the service cannot come back at the next login.
			fmt.Fprintf(m.Out, "warning: %v\n", err)
		}
	}
	for _, p := range remove {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
		fmt.Fprintf(m.Out, "removed %s\n", p)
	}
	for _, c := range after {
		if err := m.run(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// Status is what the service manager says of relayd's service.
type Status struct {
	Installed bool   // the unit or plist exists
	Path      string // where it is (or would be)
	Spec      Spec   // what it runs, read back from the file
	State     string // systemd: active, inactive, failed …; launchd: running, not running, not loaded
	Running   bool
	PID       int // launchd only, when running
}

var (
	launchdState = regexp.MustCompile(`(?m)^\s*state = (.+)$`)
	launchdPID   = regexp.MustCompile(`(?m)^\s*pid = (\d+)$`)
)

// Status reads the installed file and asks the service manager about it.
func (m *Manager) Status(ctx context.Context) (Status, error) {
	st := Status{Path: m.Path()}
	b, err := os.ReadFile(st.Path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read %s: %w", st.Path, err)
	}
	st.Installed = true
	st.Spec = specOf(m.Kind, b)
	if m.Kind == Launchd {
		out, err := output(ctx, "launchctl", "print", m.target()+"/"+m.name())
		if err != nil {
			st.State = "not loaded"
			return st, nil
		}
		st.State = "not running"
		if mm := launchdState.FindStringSubmatch(out); mm != nil {
			st.State = strings.TrimSpace(mm[1])
		}
		if mm := launchdPID.FindStringSubmatch(out); mm != nil {
			st.PID, _ = strconv.Atoi(mm[1])
		}
		st.Running = st.State == "running"
		return st, nil
	}
	// is-active exits non-zero unless active; its output is the state.
	out, err := output(ctx, "systemctl", "--user", "is-active", m.name())
	st.State = strings.TrimSpace(out)
	if st.State == "" && err != nil {
		st.State = "unknown (" + err.Error() + ")"
	}
	st.Running = st.State == "active"
	return st, nil
}

func specOf(kind string, b []byte) Spec {
	var argv []string
	if kind == Launchd {
		argv, _ = PlistArgs(b)
	} else {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "ExecStart="); ok {
				argv = SplitSystemdExec(rest)
			}
		}
	}
	if len(argv) == 0 {
		return Spec{}
	}
	return Spec{Binary: argv[0], Args: argv[1:]}
}

// run runs one service-manager command and reports it; a failure carries
// the command's output and what usually fixes it.
func (m *Manager) run(ctx context.Context, argv []string) error {
	fmt.Fprintf(m.Out, "ran: %s\n", shellJoin(argv))
	out, err := output(ctx, argv[0], argv[1:]...)
	if err == nil {
		return nil
	}
	hint := ""
	switch {
	case errors.Is(err, exec.ErrNotFound):
		hint = fmt.Sprintf(" — %s is not on PATH; is this a %s system? (--manager picks the other kind)", argv[0], m.Kind)
	case strings.Contains(out, "Failed to connect to bus") || strings.Contains(out, "XDG_RUNTIME_DIR"):
		hint = " — there is no systemd user session here (ssh without a login session, a container?): log in normally, or run `loginctl enable-linger $USER` as root once, then retry"
	}
	return fmt.Errorf("%s failed: %w%s\n%s", strings.Join(argv, " "), err, hint, strings.TrimSpace(out))
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	var b bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}

// writeAtomic replaces path with content through a temp file and rename, so
// a service manager never reads half a unit.
func writeAtomic(path string, content []byte) error {
	return atomicfile.Write(path, content, 0o644)
}

// TunnelInstance is the systemd unit of the tunnel to an SSH destination:
// relay-tunnel@DEST.service, with DEST escaped as systemd-escape does (the
// template's %I turns it back), so you@relay-host works as well as a Host
// alias from ~/.ssh/config.
func TunnelInstance(dest string) string {
	var b strings.Builder
	for i := 0; i < len(dest); i++ {
		c := dest[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == ':', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return "relay-tunnel@" + b.String() + ".service"
}

// shellJoin shows a command as it could be pasted into a shell.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r))
		}) {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
