package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	gotoml "github.com/pelletier/go-toml/v2"
	ucli "github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/internal/doccheck"
)

// repoRoot is the repository's root, from this package's folder.
const repoRoot = "../../.."

func testApp() *ucli.App {
	return App(Streams{Stdin: strings.NewReader(""), Stdout: new(bytes.Buffer), Stderr: new(bytes.Buffer)})
}

// relayMCPRules: install reads its flags after the client name too
// (parseInstallArgs), as people type them.
var relayMCPRules = doccheck.Rules{FlagsAfterArgs: map[string]bool{"relay-mcp install": true}}

// Every relay-mcp command line in README.md and docs/*.md names commands
// and flags relay-mcp has, so the documents cannot rot unnoticed.
func TestDocCommands(t *testing.T) {
	doccheck.Check(t, repoRoot, testApp(), relayMCPRules, 30)
}

// The examples in relay-mcp's --help are documents too.
func TestHelpExamples(t *testing.T) {
	n := doccheck.HelpExamples(t, testApp(), relayMCPRules)
	if n < 15 {
		t.Errorf("found only %d examples in relay-mcp's help: is the extraction broken?", n)
	}
}

// The check fails on rotted documents: a flag, a command and a client
// that relay-mcp does not have, a flag after an argument, a bad duration
// and an unclosed quote are each reported at their file:line, in shell
// blocks, config blocks and `code spans` of the prose (where claude|vscode
// is read as two alternatives, and relay-mcp install claude is fine).
func TestDocCommandsCatchRot(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "docs"), 0o755)
	readme := "# x\n\nRun `relay-mcp install claude|vscode` or\n`relay-mcp sesion list`.\n```sh\nrelay-mcp peers --bogus          # a flag that is not there\n" +
		"RELAY_TOKEN=x relay-mcp sessoin list\n" +
		"echo hi | relay-mcp send --thread t \\\n   CC-2 - --as ME\n" +
		"```\n\n```json\n{\"command\": \"relay-mcp --nope\", \"server\": \"relay-mcp 0.1.0\"}\n```\n"
	doc := "```console\n$ relay-mcp receive --wait soon\nrelay-mcp --output-not-a-command\n$ relay-mcp install vscode\n$ relay-mcp send 'CC-2 hi\n```\n"
	os.WriteFile(filepath.Join(root, "README.md"), []byte(readme), 0o644)
	os.WriteFile(filepath.Join(root, "docs", "x.md"), []byte(doc), 0o644)
	problems, n := doccheck.Problems(t, root, testApp(), relayMCPRules)
	want := []string{
		`docs/x.md:5: cannot read the command line "relay-mcp send 'CC-2 hi": unbalanced '`,
		`README.md:3: relay-mcp install vscode` + "\n\t" + `relay-mcp install: argument "vscode" is not one of claude, codex, gemini, cursor`,
		`README.md:4: relay-mcp sesion list` + "\n\t" + `relay-mcp: no command "sesion"`,
		"README.md:6: relay-mcp peers --bogus\n\trelay-mcp peers: flag --bogus is not defined (its flags: --as --help --json",
		`README.md:7: relay-mcp sessoin list` + "\n\t" + `relay-mcp: no command "sessoin"`,
		`README.md:8: relay-mcp send --thread t CC-2 - --as ME` + "\n\t" + `relay-mcp send: flag --as comes after the argument "-"`,
		"README.md:13: relay-mcp --nope\n\trelay-mcp: flag --nope is not defined",
		`docs/x.md:2: relay-mcp receive --wait soon` + "\n\t" + `relay-mcp receive: flag --wait "soon": time: invalid duration "soon"`,
		`docs/x.md:4: relay-mcp install vscode` + "\n\t" + `relay-mcp install: argument "vscode" is not one of claude, codex, gemini, cursor`,
	}
	if n != 9 || len(problems) != len(want) {
		t.Fatalf("checked %d lines (want 9), problems:\n%s", n, strings.Join(problems, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(problems[i], w) {
			t.Errorf("problem %d:\n%s\nwant it to start with\n%s", i, problems[i], w)
		}
	}
}

// docBlockAfter returns the first fenced block of the document after the
// line that contains marker (a heading or a sentence).
func docBlockAfter(t *testing.T, doc, marker string) doccheck.Block {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, doc))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, marker)
	if i < 0 {
		t.Fatalf("%s no longer says %q: update this test with the document", doc, marker)
	}
	line := strings.Count(text[:i], "\n")
	for _, blk := range doccheck.FencedBlocks(text) {
		if blk.First > line+1 {
			return blk
		}
	}
	t.Fatalf("%s: no code block after %q", doc, marker)
	return doccheck.Block{}
}

// The settings docs/agents.md says install claude --hooks writes to a
// fresh file are the ones it writes (TestInstallClaudeHooksFresh holds
// the command's output to the same golden file).
func TestDocHooksSettings(t *testing.T) {
	blk := docBlockAfter(t, "docs/agents.md", "`--write` writes exactly this:")
	want, err := os.ReadFile(filepath.Join("testdata", "hooks", "install_fresh_settings.out.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(blk.Lines, "\n") + "\n"; got != string(want) {
		t.Errorf("docs/agents.md:%d: the hook settings shown differ from what relay-mcp install claude --hooks --write writes:\n%s\nwant (testdata/hooks/install_fresh_settings.out.json):\n%s", blk.First, got, want)
	}
}

// The hand-written MCP configs of docs/agents.md put relay-mcp where
// relay-mcp install does (mcpServers.relay, [mcp_servers.relay]) and use
// only keys it writes, plus those the client documents for hand-written
// entries (Codex's env_vars); install --command relay-mcp writes the same
// bare command they show.
func TestDocMCPConfigs(t *testing.T) {
	cases := []struct {
		client, heading string
		extra           []string // keys a hand-written entry may add
	}{
		{"claude", "### Claude Code", nil},
		{"codex", "### Codex CLI", []string{"env_vars"}},
		{"gemini", "### Gemini CLI", nil},
		{"cursor", "### Cursor", nil},
	}
	for _, c := range cases {
		// A relay URL that is not the default makes install write env too.
		code, out, errOut := run(t, "", "--relay-url", "ws://10.0.0.5:9999", "install", c.client, "--command", "relay-mcp")
		if code != 0 {
			t.Fatalf("install %s: exit %d %s", c.client, code, errOut)
		}
		heading := docBlockAfter(t, "docs/agents.md", c.heading)
		blk := heading
		if blk.Lang != "json" && blk.Lang != "toml" { // the claude mcp add commands come first
			blk = docBlockAfter(t, "docs/agents.md", strings.Join(heading.Lines, "\n"))
		}
		doc := strings.Join(blk.Lines, "\n")
		wantKeys, gotKeys := entryKeys(t, out), entryKeys(t, doc)
		if wantKeys == nil || gotKeys == nil {
			t.Errorf("docs/agents.md:%d: %s: no relay entry where relay-mcp install puts it (mcpServers.relay or [mcp_servers.relay]):\n%s\ninstall prints:\n%s", blk.First, c.client, doc, out)
			continue
		}
		for k := range gotKeys {
			if !wantKeys[k] && !slices.Contains(c.extra, k) {
				t.Errorf("docs/agents.md:%d: %s entry has %q, a key relay-mcp install never writes (it writes %v)", blk.First, c.client, k, slices.Sorted(maps.Keys(wantKeys)))
			}
		}
		if !gotKeys["command"] {
			t.Errorf("docs/agents.md:%d: %s entry has no command", blk.First, c.client)
		}
		if !strings.Contains(out, `"relay-mcp"`) {
			t.Errorf("install %s --command relay-mcp: the entry does not run plain relay-mcp (found on PATH) as the documents' entries do:\n%s", c.client, out)
		}
	}
}

// entryKeys returns the keys of the relay server entry of a JSON
// (mcpServers.relay) or TOML ([mcp_servers.relay]) config, or nil.
func entryKeys(t *testing.T, config string) map[string]bool {
	t.Helper()
	var j struct {
		MCPServers map[string]map[string]any `json:"mcpServers"`
	}
	if json.Unmarshal([]byte(stripComments(config)), &j) == nil {
		return keysOf(j.MCPServers["relay"])
	}
	var toml struct {
		MCPServers map[string]map[string]any `toml:"mcp_servers"`
	}
	if err := gotoml.Unmarshal([]byte(config), &toml); err != nil {
		t.Errorf("neither JSON nor TOML: %v\n%s", err, config)
		return nil
	}
	return keysOf(toml.MCPServers["relay"])
}

func keysOf(m map[string]any) map[string]bool {
	if m == nil {
		return nil
	}
	keys := map[string]bool{}
	for k := range m {
		keys[k] = true
	}
	return keys
}

// stripComments drops the # lines install prints after the entry.
func stripComments(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "#") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// The make targets the documents name exist, and each go test command
// they show names a package of this repository and -run / -bench patterns
// that match a test or benchmark in it.
func TestDocMakeAndGoTest(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z-]*):`).FindAllStringSubmatch(string(mk), -1) {
		targets[m[1]] = true
	}
	makes, problems := doccheck.Commands(t, repoRoot, "make")
	for _, c := range makes {
		for _, target := range c.Args[1:] {
			if !strings.HasPrefix(target, "-") && !strings.Contains(target, "=") && !targets[target] {
				problems = append(problems, fmt.Sprintf("%s: make %s: the Makefile has no target %q", c.Pos, target, target))
			}
		}
	}
	gos, bad := doccheck.Commands(t, repoRoot, "go")
	problems = append(problems, bad...)
	checked := 0
	for _, c := range gos {
		if len(c.Args) < 2 || c.Args[1] != "test" {
			continue
		}
		var pkgs, patterns []string
		for i := 2; i < len(c.Args); i++ {
			switch a := c.Args[i]; {
			case (a == "-run" || a == "-bench") && i+1 < len(c.Args):
				if p := c.Args[i+1]; p != "^$" && p != "." {
					patterns = append(patterns, p)
				}
				i++
			case a == "-count" || a == "-timeout" || a == "-fuzztime":
				i++
			case strings.HasPrefix(a, "./"):
				pkgs = append(pkgs, a)
			}
		}
		for _, pkg := range pkgs {
			checked++
			names := testFuncs(t, filepath.Join(repoRoot, strings.TrimSuffix(pkg, "/...")))
			if names == nil {
				problems = append(problems, fmt.Sprintf("%s: %s: no package with tests at %s", c.Pos, strings.Join(c.Args, " "), pkg))
				continue
			}
			for _, p := range patterns {
				re, err := regexp.Compile(p)
				if err == nil && !slices.ContainsFunc(names, re.MatchString) {
					problems = append(problems, fmt.Sprintf("%s: %s: no test or benchmark in %s matches %q", c.Pos, strings.Join(c.Args, " "), pkg, p))
				}
			}
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
	if len(makes) < 10 || checked < 3 {
		t.Errorf("found %d make and %d go test commands in the documents: is the extraction broken?", len(makes), checked)
	}
}

// testFuncs returns the names of the Test and Benchmark functions in dir,
// or nil when it has no test files.
func testFuncs(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if len(files) == 0 {
		return nil
	}
	re := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark)\w+)\(`)
	names := []string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			names = append(names, m[1])
		}
	}
	return names
}

// Every RELAY_ environment variable the documents name is one the code
// reads or sets: a string literal of a Go file of relayd or relay-mcp.
func TestDocEnvVars(t *testing.T) {
	literals := map[string]bool{}
	lit := regexp.MustCompile(`"((?:CLAUDE_)?RELAY_[A-Z_]+)[="]`) // "RELAY_X" or "RELAY_X="+value
	for _, module := range []string{"relayd", "relay-mcp"} {
		filepath.WalkDir(filepath.Join(repoRoot, module), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
				literals[m[1]] = true
			}
			return err
		})
	}
	env := regexp.MustCompile(`\b(?:CLAUDE_)?RELAY_[A-Z_]*[A-Z]\b`)
	n := 0
	for _, path := range doccheck.Files(t, repoRoot) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, path)
		for i, line := range strings.Split(string(b), "\n") {
			for _, name := range env.FindAllString(line, -1) {
				n++
				if !literals[name] {
					t.Errorf("%s:%d: %s is not an environment variable relayd or relay-mcp reads or sets", rel, i+1, name)
				}
			}
		}
	}
	if n < 50 || len(literals) < 20 {
		t.Errorf("found %d variables in the documents and %d in the code: is the extraction broken?", n, len(literals))
	}
}
