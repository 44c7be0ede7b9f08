package service

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The formulae stamp the version with -X flags: build each program with
// exactly the formula's ldflags (#{version} filled in) and check that
// `version` prints it. An -X naming a variable the build does not have is
// silently ignored by the linker; this test is what notices.
func TestHomebrewFormulaeStampTheVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds relayd and relay-mcp")
	}
	ldRE := regexp.MustCompile(`(?m)^\s*ldflags = "([^"]+)"`)
	const stamp = "v9.9.9-formula"
	for _, name := range []string{"relayd", "relay-mcp"} {
		b, err := os.ReadFile(filepath.Join(deployDir, "homebrew", name+".rb"))
		if err != nil {
			t.Fatal(err)
		}
		m := ldRE.FindStringSubmatch(string(b))
		if m == nil {
			t.Fatalf("%s.rb: no ldflags = \"…\" line", name)
		}
		ldflags := strings.ReplaceAll(m[1], "#{version}", stamp)
		bin := filepath.Join(t.TempDir(), name)
		build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "github.com/claude-relay/claude-relay/"+name)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build -ldflags %q %s: %v\n%s", ldflags, name, err, out)
		}
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), name+" "+stamp+" ") {
			t.Errorf("%s built with %s.rb's ldflags %q says %q (%v), want %s %s", name, name, ldflags, strings.TrimSpace(string(out)), err, name, stamp)
		}
	}
}
