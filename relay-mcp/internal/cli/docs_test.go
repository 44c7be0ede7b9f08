package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

// repoRoot is the repository's root, from this package's folder.
const repoRoot = "../../.."

func testApp() *ucli.App {
	return App(Streams{Stdin: strings.NewReader(""), Stdout: new(bytes.Buffer), Stderr: new(bytes.Buffer)})
}

// relayMCPRules: install reads its flags after the client name too
// (parseInstallArgs), as people type them.
var relayMCPRules = argRules{flagsAfterArgs: map[string]bool{"relay-mcp install": true}}

// Every relay-mcp command line in README.md and docs/*.md names commands
// and flags relay-mcp has, so the documents cannot rot unnoticed.
func TestDocCommands(t *testing.T) {
	problems, n := docProblems(t, repoRoot, testApp(), relayMCPRules)
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d relay-mcp command lines in the documents", n)
	if n < 30 {
		t.Errorf("found only %d relay-mcp command lines in the documents: is the extraction broken?", n)
	}
}

// The examples in relay-mcp's --help are documents too.
func TestHelpExamples(t *testing.T) {
	n := checkHelpExamples(t, testApp(), relayMCPRules)
	if n < 15 {
		t.Errorf("found only %d examples in relay-mcp's help: is the extraction broken?", n)
	}
}

// doccmds_test.go is one file in two modules; the copies must not drift.
func TestDocCommandsFileInSync(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(b), "\n") // the package clause differs
		return rest
	}
	other := filepath.Join(repoRoot, "relayd", "internal", "app", "doccmds_test.go")
	if read("doccmds_test.go") != read(other) {
		t.Errorf("relay-mcp/internal/cli/doccmds_test.go and relayd/internal/app/doccmds_test.go differ beyond their package clause: make them the same")
	}
}

// The check fails on rotted documents: a flag, a command and a client
// that relay-mcp does not have, a flag after an argument, a bad duration
// and an unclosed quote are each reported at their file:line.
func TestDocCommandsCatchRot(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "docs"), 0o755)
	readme := "# x\n\n```sh\nrelay-mcp peers --bogus          # a flag that is not there\n" +
		"RELAY_TOKEN=x relay-mcp sessoin list\n" +
		"echo hi | relay-mcp send --thread t \\\n   CC-2 - --as ME\n" +
		"```\n\n```json\n{\"command\": \"relay-mcp --nope\", \"server\": \"relay-mcp 0.1.0\"}\n```\n"
	doc := "```console\n$ relay-mcp receive --wait soon\nrelay-mcp --output-not-a-command\n$ relay-mcp install vscode\n$ relay-mcp send 'CC-2 hi\n```\n"
	os.WriteFile(filepath.Join(root, "README.md"), []byte(readme), 0o644)
	os.WriteFile(filepath.Join(root, "docs", "x.md"), []byte(doc), 0o644)
	problems, n := docProblems(t, root, testApp(), relayMCPRules)
	want := []string{
		`docs/x.md:5: cannot read the command line "relay-mcp send 'CC-2 hi": unbalanced '`,
		"README.md:4: relay-mcp peers --bogus\n\trelay-mcp peers: flag --bogus is not defined (its flags: --as --help --json",
		`README.md:5: relay-mcp sessoin list` + "\n\t" + `relay-mcp: no command "sessoin"`,
		`README.md:6: relay-mcp send --thread t CC-2 - --as ME` + "\n\t" + `relay-mcp send: flag --as comes after the argument "-"`,
		"README.md:11: relay-mcp --nope\n\trelay-mcp: flag --nope is not defined",
		`docs/x.md:2: relay-mcp receive --wait soon` + "\n\t" + `relay-mcp receive: flag --wait "soon": time: invalid duration "soon"`,
		`docs/x.md:4: relay-mcp install vscode` + "\n\t" + `relay-mcp install: argument "vscode" is not one of claude, codex, gemini, cursor`,
	}
	if n != 6 || len(problems) != len(want) {
		t.Fatalf("checked %d lines (want 6), problems:\n%s", n, strings.Join(problems, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(problems[i], w) {
			t.Errorf("problem %d:\n%s\nwant it to start with\n%s", i, problems[i], w)
		}
	}
}
