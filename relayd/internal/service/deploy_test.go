package service

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the repository's deploy/ copies from the templates")

// deployDir is the repository's deploy/ folder, from this package's folder.
const deployDir = "../../../deploy"

// Example values of the deploy/ copies: paths a reader replaces, or that
// fit the common case as they are (go install puts relayd in ~/go/bin).
const exampleLogDir = "/Users/you/Library/Logs/claude-relay"

// deployCopies renders every template the way deploy/ holds it.
func deployCopies(t *testing.T) map[string][]byte {
	t.Helper()
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return map[string][]byte{
		"systemd/" + Unit:                   must(systemdUnitRaw("%h/go/bin/relayd")),
		"systemd/" + TunnelUnit:             must(TunnelSystemdUnit()),
		"launchd/" + Label + ".plist":       must(LaunchdPlist(Spec{Binary: "/Users/you/go/bin/relayd"}, exampleLogDir)),
		"launchd/" + TunnelLabel + ".plist": must(TunnelPlist("relay-host", 9999, exampleLogDir)),
	}
}

// deploy/ is what relayd service install writes: the copies there are the
// embedded templates rendered with example values. Run
// go test ./relayd/internal/service -run TestDeployCopies -update after
// changing a template.
func TestDeployCopies(t *testing.T) {
	for name, want := range deployCopies(t) {
		path := filepath.Join(deployDir, name)
		if *update {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run this test with -update to write it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("deploy/%s differs from its template in relayd/internal/service/templates; edit the template, then run this test with -update", name)
		}
	}
}

// Every plist is well-formed XML with the keys launchd needs, and passes
// plutil -lint where there is one (macOS).
func TestPlists(t *testing.T) {
	for name, b := range deployCopies(t) {
		if strings.HasSuffix(name, ".plist") {
			checkPlist(t, name, b)
		}
	}
	if _, err := exec.LookPath("plutil"); err != nil {
		t.Log("plutil not found (not macOS): checked the plists as XML only")
	}
}

// checkPlist fails t unless b is a plist launchd can run: well-formed XML
// with the keys it needs, program arguments, plutil -lint where there is one.
func checkPlist(t *testing.T, name string, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	var keys []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", name, err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "key" {
			var k string
			d.DecodeElement(&k, &se)
			keys = append(keys, k)
		}
	}
	for _, k := range []string{"Label", "ProgramArguments", "RunAtLoad", "KeepAlive", "StandardOutPath", "StandardErrorPath"} {
		if !strings.Contains(" "+strings.Join(keys, " ")+" ", " "+k+" ") {
			t.Errorf("%s has no %s key", name, k)
		}
	}
	args, err := PlistArgs(b)
	if err != nil || len(args) == 0 {
		t.Errorf("%s: ProgramArguments %q (%v)", name, args, err)
	}
	if plutil, err := exec.LookPath("plutil"); err == nil {
		path := filepath.Join(t.TempDir(), filepath.Base(name))
		os.WriteFile(path, b, 0o644)
		if out, err := exec.Command(plutil, "-lint", path).CombinedOutput(); err != nil {
			t.Errorf("plutil -lint %s: %v\n%s", name, err, out)
		}
	}
}

// systemd-analyze verify, where installed, knows every directive: an
// unknown or misspelt key fails the test.
func TestSystemdUnitsVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: unit files not verified here")
	}
	dir := t.TempDir()
	// A real binary for ExecStart: verify checks that it is executable.
	unit, err := SystemdUnit(Spec{Binary: "/bin/sh", Args: []string{"--listen", "127.0.0.1:9999", "--data-dir", "/tmp/relay data"}})
	if err != nil {
		t.Fatal(err)
	}
	tunnel, _ := TunnelSystemdUnit()
	files := map[string][]byte{Unit: unit, "relay-tunnel@relay-host.service": tunnel}
	for name, b := range files {
		verifyUnit(t, sa, filepath.Join(dir, name), b)
	}
}

// verifyUnit writes b to path and fails t if systemd-analyze verify finds
// fault with it; it skips t where systemd-analyze cannot run.
func verifyUnit(t *testing.T, sa, path string, b []byte) {
	t.Helper()
	name := filepath.Base(path)
	os.WriteFile(path, b, 0o644)
	out, err := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
	if strings.Contains(string(out), "Failed to initialize manager") || strings.Contains(string(out), "RuntimeDirectory") {
		t.Skipf("systemd-analyze cannot run here: %s", out)
	}
	// verify warns about unknown keys on stderr but still exits 0.
	for _, bad := range []string{"Unknown key", "Invalid", "Failed to parse", "not executable", "Unknown section"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("systemd-analyze verify %s: %s", name, out)
		}
	}
	if err != nil && !strings.Contains(string(out), "ssh") {
		t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
	}
}

// The Homebrew formulae are valid Ruby (brew is not needed for that).
func TestHomebrewFormulaeParse(t *testing.T) {
	formulae, _ := filepath.Glob(filepath.Join(deployDir, "homebrew", "*.rb"))
	if len(formulae) != 2 {
		t.Fatalf("want relayd.rb and relay-mcp.rb in deploy/homebrew, found %q", formulae)
	}
	for _, f := range formulae {
		b, _ := os.ReadFile(f)
		for _, w := range []string{`depends_on "go" => :build`, "test do", "system \"go\", \"build\""} {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %s", f, w)
			}
		}
		if strings.HasSuffix(f, "relayd.rb") && !strings.Contains(string(b), "service do") {
			t.Errorf("%s has no service block", f)
		}
	}
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		t.Skip("ruby not found: formulae not syntax-checked (CI installs ruby)")
	}
	for _, f := range formulae {
		if out, err := exec.Command(ruby, "-c", f).CombinedOutput(); err != nil || !strings.Contains(string(out), "Syntax OK") {
			t.Errorf("ruby -c %s: %v\n%s", f, err, out)
		}
	}
}

func TestSystemdExecRoundTrip(t *testing.T) {
	for _, argv := range [][]string{
		{"/usr/local/bin/relayd"},
		{"/home/a b/relayd", "--data-dir", "/srv/100%/$HOME", "--listen", "127.0.0.1:9999"},
		{"/r", `with "quotes" and \back`, ""},
	} {
		line := systemdExec(argv)
		if got := SplitSystemdExec(line); strings.Join(got, "\x00") != strings.Join(argv, "\x00") {
			t.Errorf("%q -> %s -> %q", argv, line, got)
		}
	}
}

func TestTunnelInstanceEscapesLikeSystemd(t *testing.T) {
	for dest, want := range map[string]string{
		"relay-host":     `relay-tunnel@relay\x2dhost.service`,
		"you@relay-host": `relay-tunnel@you\x40relay\x2dhost.service`,
		"box.lan":        "relay-tunnel@box.lan.service",
	} {
		if got := TunnelInstance(dest); got != want {
			t.Errorf("TunnelInstance(%q) = %s, want %s", dest, got, want)
		}
		if sd, err := exec.LookPath("systemd-escape"); err == nil {
			out, err := exec.Command(sd, "--template=relay-tunnel@.service", dest).Output()
			if err != nil || strings.TrimSpace(string(out)) != want {
				t.Errorf("systemd-escape says %s (%v), we say %s", out, err, want)
			}
		}
	}
}
