package app

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/relayd/internal/daemon"
	"github.com/claude-relay/claude-relay/relayd/internal/service"
)

// serviceCommand is `relayd service install|uninstall|status`: relayd as a
// systemd user unit (Linux) or a LaunchAgent (macOS), written from the same
// templates as the repository's deploy/ folder.
func serviceCommand(stdout io.Writer) *cli.Command {
	common := []cli.Flag{
		&cli.StringFlag{Name: "manager", Value: defaultManager(),
			Usage: "service manager: systemd (user units; the default on Linux) or launchd (LaunchAgents; the default on macOS)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "print what would be written and run, and change nothing"},
		&cli.StringFlag{Name: "tunnel", Usage: "handle the SSH tunnel to the relayd on SSH `DEST` (you@relay-host, or a Host of ~/.ssh/config) instead of relayd"},
		&cli.IntFlag{Name: "tunnel-port", Value: 9999, Usage: "`PORT` the tunnel forwards: local 127.0.0.1:PORT to the relay host's 127.0.0.1:PORT"},
	}
	return &cli.Command{
		Name:  "service",
		Usage: "run relayd as a user service that starts at login and restarts on failure",
		Description: `Writes, loads and checks relayd's service file so nobody edits unit files or XML:
a systemd user unit (~/.config/systemd/user/relayd.service, logs in the journal) on
Linux, a LaunchAgent (~/Library/LaunchAgents/com.claude-relay.relayd.plist, logs in
~/Library/Logs/claude-relay/) on macOS. The service runs this relayd binary (or
--binary) with the flags given to install.

Examples:
   relayd service install                          # 127.0.0.1:9999, data in ~/claude-relay/data
   relayd service install --listen 127.0.0.1:7777 --data-dir ~/relay-data
   relayd service install --dry-run                # show the unit and the commands only
   relayd service install -- --retention 720h      # any other relayd flag after --
   relayd service status                           # installed? running? answering /healthz?
   relayd service uninstall
   relayd service install --tunnel you@relay-host  # on another machine: an SSH tunnel to that relay`,
		Subcommands: []*cli.Command{
			{
				Name:      "install",
				Usage:     "write the service file, enable it and (re)start relayd",
				ArgsUsage: "[-- other relayd flags]",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "binary", Usage: "relayd `PATH` the service runs (default: this relayd)"},
					&cli.StringFlag{Name: "listen", EnvVars: []string{"RELAY_LISTEN"},
						Usage: "`ADDR` the service listens on (default 127.0.0.1:9999)"},
					&cli.StringFlag{Name: "data-dir", EnvVars: []string{"RELAY_DATA_DIR"},
						Usage: "`DIR` of the service's store (default ~/claude-relay/data); made absolute"},
					&cli.StringFlag{Name: "token-file", EnvVars: []string{"RELAY_TOKEN_FILE"},
						Usage: "`FILE` with the token clients must present; a service does not see RELAY_TOKEN from this shell"},
				}, common...),
				Action: func(c *cli.Context) error { return serviceInstall(c, stdout) },
			},
			{
				Name:   "uninstall",
				Usage:  "stop relayd's service and remove its file (the store stays)",
				Flags:  common,
				Action: func(c *cli.Context) error { return serviceUninstall(c, stdout) },
			},
			{
				Name:   "status",
				Usage:  "say whether the service is installed, running and answering /healthz (exit 3 when not running)",
				Flags:  common,
				Action: func(c *cli.Context) error { return serviceStatus(c, stdout) },
			},
		},
	}
}

func defaultManager() string {
	if runtime.GOOS == "darwin" {
		return service.Launchd
	}
	return service.Systemd
}

func newManager(c *cli.Context, out io.Writer) (*service.Manager, error) {
	kind := c.String("manager")
	if kind != service.Systemd && kind != service.Launchd {
		return nil, cli.Exit(fmt.Sprintf("--manager %q: use systemd or launchd", kind), 2)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, cli.Exit("cannot find the home directory: set HOME", 1)
	}
	tunnel, port := c.String("tunnel"), c.Int("tunnel-port")
	if strings.HasPrefix(tunnel, "-") || strings.ContainsAny(tunnel, " \t\n") {
		return nil, cli.Exit(fmt.Sprintf("--tunnel %q is not an SSH destination: use user@host or a Host of ~/.ssh/config", tunnel), 2)
	}
	if port < 1 || port > 65535 {
		return nil, cli.Exit(fmt.Sprintf("--tunnel-port %d is not a TCP port (1-65535)", port), 2)
	}
	return &service.Manager{Kind: kind, Home: home, ConfigHome: os.Getenv("XDG_CONFIG_HOME"), UID: os.Getuid(),
		DryRun: c.Bool("dry-run"), Out: out, Tunnel: tunnel, TunnelPort: port}, nil
}

// installSpec works out the command the service runs from install's flags.
func installSpec(c *cli.Context) (service.Spec, error) {
	bin := c.String("binary")
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return service.Spec{}, cli.Exit(fmt.Sprintf("cannot tell where this relayd is (%v); pass --binary PATH", err), 1)
		}
		if strings.Contains(exe, "go-build") {
			return service.Spec{}, cli.Exit("this relayd runs from a temporary `go run` build that will vanish; install it first (go install, make install or brew install) and run that relayd, or pass --binary PATH", 2)
		}
		bin = stableBinary(exe)
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return service.Spec{}, cli.Exit(err.Error(), 2)
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return service.Spec{}, cli.Exit(fmt.Sprintf("--binary %s is not an executable file", bin), 2)
	}
	var args []string
	extra := c.Args().Slice()
	listen := c.String("listen")
	if listen != "" {
		if _, err := listenAddr(listen, 0); err != nil {
			return service.Spec{}, cli.Exit(err.Error(), 2)
		}
		args = append(args, "--listen", listen)
	} else {
		listen = daemon.DefaultListen
	}
	for _, name := range []string{"data-dir", "token-file"} {
		if v := c.String(name); v != "" {
			abs, err := filepath.Abs(expandHome(v))
			if err != nil {
				return service.Spec{}, cli.Exit(err.Error(), 2)
			}
			args = append(args, "--"+name, abs)
		}
	}
	if !daemon.IsLoopback(listenOf(append(args, extra...))) && c.String("token-file") == "" && !mentionsAny(extra, "--tokens-file", "--insecure") {
		return service.Spec{}, cli.Exit(fmt.Sprintf("a service listening on %s needs a token, or relayd will refuse to start and restart forever: pass --token-file FILE (a service does not see RELAY_TOKEN from this shell), or -- --tokens-file FILE, or -- --insecure", listen), 2)
	}
	return service.Spec{Binary: bin, Args: append(args, extra...)}, nil
}

func mentionsAny(args []string, flags ...string) bool {
	for _, a := range args {
		for _, f := range flags {
			if a == f || strings.HasPrefix(a, f+"=") {
				return true
			}
		}
	}
	return false
}

// expandHome turns a leading ~/ into the home directory: a flag value
// written as --data-dir=~/x reaches relayd without the shell's expansion.
func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

func serviceInstall(c *cli.Context, stdout io.Writer) error {
	m, err := newManager(c, stdout)
	if err != nil {
		return err
	}
	if m.Tunnel != "" {
		return tunnelInstall(c, m, stdout)
	}
	spec, err := installSpec(c)
	if err != nil {
		return err
	}
	if os.Getenv("RELAY_TOKEN") != "" && !mentionsAny(spec.Args, "--token-file", "--tokens-file") {
		fmt.Fprintln(stdout, "note: RELAY_TOKEN is set in this shell, but the service will not see it; put the token in a file and pass --token-file")
	}
	if err := m.Install(c.Context, spec); err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if m.DryRun {
		return nil
	}
	fmt.Fprintf(stdout, "relayd service installed; it listens on %s\n", listenOf(spec.Args))
	fmt.Fprintf(stdout, "check it: relayd service status    logs: %s\n", m.Logs())
	if m.Kind == service.Systemd {
		fmt.Fprintln(stdout, "to keep it running after you log out: loginctl enable-linger $USER")
	}
	return nil
}

func serviceUninstall(c *cli.Context, stdout io.Writer) error {
	m, err := newManager(c, stdout)
	if err != nil {
		return err
	}
	if err := m.Uninstall(c.Context); err != nil {
		return cli.Exit(err.Error(), 1)
	}
	return nil
}

// serviceStatus exits 0 when the service is installed, running and
// answering, 3 when it is not installed or not running (as systemctl
// status does), and 1 when it runs but does not answer.
func serviceStatus(c *cli.Context, stdout io.Writer) error {
	m, err := newManager(c, stdout)
	if err != nil {
		return err
	}
	st, err := m.Status(c.Context)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	what, install := "relayd service", "relayd service install"
	if m.Tunnel != "" {
		what, install = "tunnel to "+m.Tunnel, "relayd service install --tunnel "+m.Tunnel
	}
	if !st.Installed {
		fmt.Fprintf(stdout, "%s (%s): not installed (no %s)\n", what, m.Kind, st.Path)
		return cli.Exit("install it with: "+install, 3)
	}
	fmt.Fprintf(stdout, "%s (%s): installed at %s\n", what, m.Kind, st.Path)
	fmt.Fprintf(stdout, "  runs:  %s\n", strings.Join(st.Spec.Argv(), " "))
	state := st.State
	if st.PID != 0 {
		state += fmt.Sprintf(" (pid %d)", st.PID)
	}
	fmt.Fprintf(stdout, "  state: %s\n", state)
	fmt.Fprintf(stdout, "  logs:  %s\n", m.Logs())
	if !st.Running {
		return cli.Exit(fmt.Sprintf("%s is not running; see its logs (%s), then start it: %s", what, m.Logs(), startHint(m, st.Path)), 3)
	}
	addr := listenOf(st.Spec.Args)
	_, hasTLS := argValue(st.Spec.Args, "tls-cert")
	if m.Tunnel != "" {
		// Through the tunnel: its local end answers only if ssh forwards
		// to a relayd on the far side.
		addr, hasTLS = fmt.Sprintf("127.0.0.1:%d", m.TunnelPort), false
	}
	h, err := probeHealth(c.Context, addr, hasTLS)
	if err != nil {
		fmt.Fprintf(stdout, "  health: FAIL %v\n", err)
		return cli.Exit(what+" runs but no relayd answers /healthz through it; see its logs: "+m.Logs(), 1)
	}
	fmt.Fprintf(stdout, "  health: ok — relayd %s (protocol v%d) on %s, %d peers online, up %s\n",
		h.Version, h.Proto, addr, h.Online, fmtUptime(h.UptimeS))
	return nil
}

func startHint(m *service.Manager, path string) string {
	switch {
	case m.Kind == service.Launchd:
		return "launchctl bootstrap gui/$(id -u) " + path
	case m.Tunnel != "":
		return "systemctl --user start '" + service.TunnelInstance(m.Tunnel) + "'"
	}
	return "systemctl --user start relayd"
}

// tunnelInstall installs the SSH tunnel service: the relay is on another
// machine, so nothing of relayd's own is needed here but this command.
func tunnelInstall(c *cli.Context, m *service.Manager, stdout io.Writer) error {
	if _, err := exec.LookPath("ssh"); err != nil && !m.DryRun {
		return cli.Exit("ssh is not installed here; the tunnel needs it (apt install openssh-client)", 1)
	}
	if err := m.Install(c.Context, service.Spec{}); err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if m.DryRun {
		return nil
	}
	fmt.Fprintf(stdout, "tunnel installed: 127.0.0.1:%d here reaches 127.0.0.1:%d on %s\n", m.TunnelPort, m.TunnelPort, m.Tunnel)
	fmt.Fprintf(stdout, "check it: relayd service status --tunnel %s    logs: %s\n", m.Tunnel, m.Logs())
	fmt.Fprintln(stdout, "ssh runs with BatchMode=yes: its key must not need a passphrase typed (use ssh-agent or the keychain)")
	return nil
}

func fmtUptime(s float64) string {
	d := int64(s)
	switch {
	case d >= 86400:
		return fmt.Sprintf("%dd%dh", d/86400, d%86400/3600)
	case d >= 3600:
		return fmt.Sprintf("%dh%dm", d/3600, d%3600/60)
	}
	return fmt.Sprintf("%dm%ds", d/60, d%60)
}

// stableBinary turns a Homebrew Cellar path, which an upgrade deletes, into
// the formula's opt path, which follows upgrades. On Linux os.Executable
// resolves symlinks, so a brew-installed relayd reports its Cellar path.
func stableBinary(exe string) string {
	prefix, rest, ok := strings.Cut(exe, "/Cellar/relayd/")
	if !ok {
		return exe
	}
	_, tail, ok := strings.Cut(rest, "/") // past the version folder
	if !ok {
		return exe
	}
	opt := filepath.Join(prefix, "opt", "relayd", tail)
	if _, err := os.Stat(opt); err != nil {
		return exe
	}
	return opt
}
