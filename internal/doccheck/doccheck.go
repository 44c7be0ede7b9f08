// Package doccheck finds the command lines that README.md and docs/*.md
// show (shell blocks, config blocks, code spans of the prose) and checks
// them against a urfave/cli app: its commands, flags and flag values. The
// docs tests of relayd and relay-mcp use it, each with its own app, so the
// documents cannot name a command or flag that is not there.
package doccheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v2"
)

// Command is one command line found in a document.
type Command struct {
	Pos  string   // file:line where the command starts
	Args []string // its words, Args[0] the program
	// Mention: a code span in prose, which may name a flag without its
	// value ("set --token-file").
	Mention bool
}

// Files are the documents whose commands must keep working: README.md
// and docs/*.md under root.
func Files(t testing.TB, root string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs/*.md under %s: %v", root, err)
	}
	return append([]string{filepath.Join(root, "README.md")}, files...)
}

// shellLangs are the info strings of fenced blocks that hold commands.
var shellLangs = map[string]bool{"": true, "sh": true, "bash": true, "shell": true, "console": true, "zsh": true, "fish": true}

// Commands returns every command line of program in the documents. In
// fenced shell blocks: after a "$ " prompt, an environment prefix
// (RELAY_TOKEN=… relayd), a pipe (… | relay-mcp send), or inside $(…);
// comments dropped and continued lines joined; in a block that shows
// prompts, only the lines after a prompt are commands (the rest is output).
// Also the commands config blocks show (configCommands) and the code spans
// of the prose (spanCommands). Lines that start with program but cannot be
// read are problems.
func Commands(t testing.TB, root, program string) (out []Command, problems []string) {
	t.Helper()
	for _, path := range Files(t, root) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, path)
		spans, bad := spanCommands(rel, string(b), program)
		out, problems = append(out, spans...), append(problems, bad...)
		for _, blk := range FencedBlocks(string(b)) {
			if !shellLangs[blk.Lang] {
				out = append(out, configCommands(rel, blk, program)...)
				continue
			}
			prompts := false
			for _, l := range blk.Lines {
				prompts = prompts || strings.HasPrefix(strings.TrimSpace(l), "$ ")
			}
			for i := 0; i < len(blk.Lines); i++ {
				start := blk.First + i
				line := strings.TrimSpace(blk.Lines[i])
				if prompts {
					if !strings.HasPrefix(line, "$ ") {
						continue
					}
					line = strings.TrimPrefix(line, "$ ")
				}
				for strings.HasSuffix(line, `\`) && i+1 < len(blk.Lines) {
					i++
					line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(blk.Lines[i])
				}
				pos := rel + ":" + strconv.Itoa(start)
				cmds, err := shellCommands(line)
				if err != nil {
					// Output (a doctor report, a log line) need not be
					// shell; a line that starts with the program must be.
					if w := dropEnv(strings.Fields(line)); len(w) > 0 && filepath.Base(w[0]) == program {
						problems = append(problems, fmt.Sprintf("%s: cannot read the command line %q: %v", pos, line, err))
					}
					continue
				}
				for _, words := range cmds {
					if words = dropEnv(words); len(words) > 0 && filepath.Base(words[0]) == program {
						out = append(out, Command{Pos: pos, Args: words})
					}
				}
			}
		}
	}
	return out, problems
}

// configCommands returns the commands of program that a config file (JSON,
// TOML) shows: a "command": "relay-mcp hook codex" (or command = "…"), or
// an array ["relay-mcp", "hook", "codex"].
func configCommands(rel string, blk Block, program string) []Command {
	str := regexp.MustCompile(`command"?\s*[:=]\s*"(` + regexp.QuoteMeta(program) + `( [^"]*)?)"`)
	arr := regexp.MustCompile(`\[\s*"` + regexp.QuoteMeta(program) + `"[^\]]*\]`)
	var out []Command
	for i, line := range blk.Lines {
		pos := rel + ":" + strconv.Itoa(blk.First+i)
		for _, m := range str.FindAllStringSubmatch(line, -1) {
			out = append(out, Command{Pos: pos, Args: strings.Fields(m[1])})
		}
		for _, m := range arr.FindAllString(line, -1) {
			var words []string
			if json.Unmarshal([]byte(m), &words) == nil {
				out = append(out, Command{Pos: pos, Args: words})
			}
		}
	}
	return out
}

// spanCommands returns the commands of program in the `code spans` of the
// prose (outside fenced blocks), read as a synopsis: [optional] parts are
// checked as if given, a|b alternatives each, an ellipsis dropped, a flag
// named without its value accepted, --a/--b as two flags.
func spanCommands(rel, text, program string) (out []Command, problems []string) {
	lines := strings.Split(text, "\n")
	for _, blk := range FencedBlocks(text) {
		for i := blk.First - 2; i <= blk.First-1+len(blk.Lines) && i < len(lines); i++ {
			lines[i] = "" // the block and its fences
		}
	}
	prose := strings.Join(lines, "\n")
	span := regexp.MustCompile("`([^`]+)`")
	alt := regexp.MustCompile(`[^\s|'"]+(\|[^\s|'"]+)+`)
	for _, m := range span.FindAllStringSubmatchIndex(prose, -1) {
		s := prose[m[2]:m[3]]
		if strings.Contains(s, "\n\n") || (s != program && !strings.HasPrefix(s, program+" ")) {
			continue
		}
		pos := rel + ":" + strconv.Itoa(strings.Count(prose[:m[0]], "\n")+1)
		s = strings.NewReplacer("\n", " ", `\|`, "|", "[", "", "]", "", "…", "", "/--", " --").Replace(s)
		variants := []string{s}
		if a := alt.FindStringIndex(s); a != nil && (a[0] == 0 || !strings.ContainsRune(`'"`, rune(s[a[0]-1]))) { // not a quoted regexp
			variants = nil
			for _, choice := range strings.Split(s[a[0]:a[1]], "|") {
				variants = append(variants, s[:a[0]]+choice+s[a[1]:])
			}
		}
		for _, v := range variants {
			cmds, err := shellCommands(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: cannot read the command `%s`: %v", pos, s, err))
				continue
			}
			out = append(out, Command{Pos: pos, Args: cmds[0], Mention: true})
		}
	}
	return out, problems
}

// Block is one fenced block of a Markdown text.
type Block struct {
	Lang  string   // its info string: sh, json …
	First int      // line number of Lines[0]
	Lines []string // its lines, without the fences
}

// FencedBlocks returns the ``` blocks of a Markdown text (indented ones in
// lists too).
func FencedBlocks(text string) []Block {
	var blocks []Block
	var cur *Block
	fence := ""
	for n, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")):
			fence = trimmed[:3]
			cur = &Block{Lang: strings.TrimSpace(strings.TrimLeft(trimmed, fence[:1])), First: n + 2}
		case cur != nil && strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.Lines = append(cur.Lines, line)
		}
	}
	return blocks
}

// shellCommands splits one shell line into its simple commands (split at
// | || & && ;, $(…) read as commands of their own), each
// as its words with quotes removed. Redirections and comments are dropped.
func shellCommands(line string) ([][]string, error) {
	var cmds [][]string
	var words []string
	var word strings.Builder
	inWord, skipNext := false, false
	endWord := func() {
		if inWord {
			if !skipNext {
				words = append(words, word.String())
			}
			skipNext = false
		}
		word.Reset()
		inWord = false
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
	}
	// sub reads a $( … ) starting at line[i] == '(' and returns its end.
	sub := func(i int) (int, error) {
		depth := 0
		for j := i; j < len(line); j++ {
			switch line[j] {
			case '(':
				depth++
			case ')':
				if depth--; depth == 0 {
					inner, err := shellCommands(line[i+1 : j])
					cmds = append(cmds, inner...)
					return j, err
				}
			}
		}
		return 0, errUnbalanced("$(")
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errUnbalanced("'")
			}
			word.WriteString(line[i+1 : i+1+j])
			inWord, i = true, i+1+j
		case c == '"':
			inWord = true
			for i++; ; i++ {
				if i >= len(line) {
					return nil, errUnbalanced(`"`)
				}
				if line[i] == '"' {
					break
				}
				if line[i] == '\\' && i+1 < len(line) {
					i++
				} else if line[i] == '$' && i+1 < len(line) && line[i+1] == '(' {
					end, err := sub(i + 1)
					if err != nil {
						return nil, err
					}
					word.WriteString(line[i : end+1])
					i = end
					continue
				}
				word.WriteByte(line[i])
			}
		case c == '\\' && i+1 < len(line):
			word.WriteByte(line[i+1])
			inWord, i = true, i+1
		case c == '$' && i+1 < len(line) && line[i+1] == '(':
			end, err := sub(i + 1)
			if err != nil {
				return nil, err
			}
			word.WriteString(line[i : end+1])
			inWord, i = true, end
		case c == '#' && !inWord:
			i = len(line)
		case c == ' ' || c == '\t':
			endWord()
		case c == '|' || c == '&' || c == ';':
			endCmd()
		case c == '>' || c == '<':
			// "2>" or ">" or ">>": the redirection's target is not an argument.
			if inWord && word.String() == "2" {
				word.Reset()
				inWord = false
			}
			endWord()
			for i+1 < len(line) && (line[i+1] == '>' || line[i+1] == '&') {
				i++
			}
			skipNext = true
			inWord = false
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	endCmd()
	return cmds, nil
}

type errUnbalanced string

func (e errUnbalanced) Error() string { return "unbalanced " + string(e) }

// dropEnv removes the NAME=value words before a command.
func dropEnv(words []string) []string {
	for len(words) > 0 {
		name, _, ok := strings.Cut(words[0], "=")
		if !ok || name == "" || strings.ContainsAny(name, "-./$ ") {
			break
		}
		words = words[1:]
	}
	return words
}

// checkArgs checks one command line against the app the way urfave/cli v2
// parses it: each command word names a command, each flag exists for the
// command it follows and has a value when it needs one (a valid number or
// duration for those flags), no flag comes after the first argument (v2
// stops reading flags there) unless rules say the command reads them
// there, and an argument chosen from a list in the command's ArgsUsage
// ("claude|codex") is one of them. It returns what is wrong, or "".
func checkArgs(app *ucli.App, args []string, rules Rules) string {
	path := app.Name
	flags := append([]ucli.Flag{}, app.Flags...)
	if !app.HideHelp {
		flags = append(flags, ucli.HelpFlag)
	}
	if app.Version != "" && !app.HideVersion {
		flags = append(flags, ucli.VersionFlag)
	}
	subs := app.Commands
	var cmd *ucli.Command
	hasAction := app.Action != nil
	positional := 0
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if allowed, ok := rules.AfterDashDash[path]; ok {
				sub := &ucli.App{Name: path + " --", Flags: allowed, HideHelp: true, Action: func(*ucli.Context) error { return nil }}
				if p := checkArgs(sub, append([]string{sub.Name}, args[i+1:]...), Rules{}); p != "" {
					return p
				}
			}
			return ""
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			if positional > 0 && !rules.FlagsAfterArgs[path] {
				return path + ": flag " + a + " comes after the argument " + strconv.Quote(args[i-1]) + "; urfave/cli stops reading flags at the first argument, so it is taken as an argument: put flags first"
			}
			name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			f := findFlag(flags, name)
			if f == nil {
				return path + ": flag " + a + " is not defined (its flags: " + flagList(flags) + ")"
			}
			if !isBool(f) && !hasValue {
				if i+1 >= len(args) {
					if rules.mention {
						continue
					}
					return path + ": flag " + a + " needs a value"
				}
				i++
				value = args[i]
			}
			if err := checkValue(f, value); (hasValue || !isBool(f)) && err != nil {
				return path + ": flag " + a + " " + strconv.Quote(value) + ": " + err.Error()
			}
			continue
		}
		if positional == 0 && len(subs) > 0 {
			if c := findCommand(subs, a); c != nil {
				cmd, path, subs, hasAction = c, path+" "+c.Name, c.Subcommands, c.Action != nil
				flags = append([]ucli.Flag{}, c.Flags...)
				if !c.HideHelp {
					flags = append(flags, ucli.HelpFlag)
				}
				continue
			}
			// A command with commands of its own and no arguments in its
			// usage takes none: a word here is a command that is not there.
			usage := app.ArgsUsage
			if cmd != nil {
				usage = cmd.ArgsUsage
			}
			if !hasAction || usage == "" {
				return path + ": no command " + strconv.Quote(a) + " (its commands: " + commandList(subs) + ")"
			}
		}
		if cmd != nil && positional == 0 {
			if choices := argChoices(cmd.ArgsUsage); choices != nil && !slices.Contains(choices, a) && !strings.Contains(a, "$") {
				return path + ": argument " + strconv.Quote(a) + " is not one of " + strings.Join(choices, ", ")
			}
		}
		positional++
	}
	if !hasAction && len(subs) > 0 && !rules.mention { // prose may name a group: "relayd service"
		return path + ": needs one of its commands: " + commandList(subs)
	}
	return ""
}

// Rules are what a command line does beyond urfave/cli's parsing, by
// command path ("relayd service install").
type Rules struct {
	AfterDashDash  map[string][]ucli.Flag // the flags allowed after "--"
	FlagsAfterArgs map[string]bool        // the command reads its flags after its arguments too
	mention        bool                   // a flag may come without its value
}

func findFlag(flags []ucli.Flag, name string) ucli.Flag {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

func findCommand(cmds []*ucli.Command, name string) *ucli.Command {
	for _, c := range cmds {
		if c.Name == name || slices.Contains(c.Aliases, name) {
			return c
		}
	}
	return nil
}

func isBool(f ucli.Flag) bool {
	_, ok := f.(*ucli.BoolFlag)
	return ok
}

// checkValue parses value as the flag would; values the shell expands are
// not checked.
func checkValue(f ucli.Flag, value string) error {
	if strings.ContainsAny(value, "$`") {
		return nil
	}
	var err error
	switch f.(type) {
	case *ucli.IntFlag:
		_, err = strconv.Atoi(value)
	case *ucli.DurationFlag:
		_, err = time.ParseDuration(value)
	case *ucli.BoolFlag:
		_, err = strconv.ParseBool(value)
	}
	return err
}

// argChoices reads "claude|codex|gemini|cursor" or "[bash|zsh|fish] …"
// from the front of an ArgsUsage.
func argChoices(usage string) []string {
	first, _, _ := strings.Cut(strings.TrimSpace(usage), " ")
	first = strings.Trim(first, "[]")
	if !strings.Contains(first, "|") {
		return nil
	}
	return strings.Split(first, "|")
}

func flagList(flags []ucli.Flag) string {
	var names []string
	for _, f := range flags {
		if sf, ok := f.(*ucli.StringFlag); ok && sf.Hidden {
			continue // the global options every command accepts
		}
		names = append(names, "--"+f.Names()[0])
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

func commandList(cmds []*ucli.Command) string {
	var names []string
	for _, c := range cmds {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

// Problems checks every command of app's program in the documents under
// root and says what is wrong with each broken one, at its file:line. n is
// how many it checked.
func Problems(t testing.TB, root string, app *ucli.App, rules Rules) (problems []string, n int) {
	t.Helper()
	cmds, problems := Commands(t, root, app.Name)
	for _, c := range cmds {
		r := rules
		r.mention = c.Mention
		if p := checkArgs(app, c.Args, r); p != "" {
			problems = append(problems, fmt.Sprintf("%s: %s\n\t%s", c.Pos, strings.Join(c.Args, " "), p))
		}
	}
	return problems, len(cmds)
}

// Check fails t for each problem Problems finds, and when it found fewer
// than atLeast command lines: then the extraction broke, not the documents.
func Check(t testing.TB, root string, app *ucli.App, rules Rules, atLeast int) {
	t.Helper()
	problems, n := Problems(t, root, app, rules)
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d %s command lines in the documents", n, app.Name)
	if n < atLeast {
		t.Errorf("found only %d %s command lines in the documents: is the extraction broken?", n, app.Name)
	}
}

// HelpExamples checks the command lines of the "Examples:" sections
// of the app's help, as checkDocCommands does the documents'. It returns
// how many it checked.
func HelpExamples(t testing.TB, app *ucli.App, rules Rules) int {
	t.Helper()
	n := 0
	check := func(where, text string) {
		in := false
		for _, line := range strings.Split(text, "\n") {
			trimmed := strings.TrimSpace(line)
			switch {
			case trimmed == "Examples:":
				in = true
				continue
			case trimmed == "" || trimmed == line:
				in = false
			}
			if !in {
				continue
			}
			cmds, err := shellCommands(trimmed)
			if err != nil {
				t.Errorf("%s help: cannot read the example %q: %v", where, trimmed, err)
			}
			for _, words := range cmds {
				if words = dropEnv(words); len(words) > 0 && words[0] == app.Name {
					n++
					if p := checkArgs(app, words, rules); p != "" {
						t.Errorf("%s help: %s\n\t%s", where, strings.Join(words, " "), p)
					}
				}
			}
		}
	}
	var walk func(path string, cmds []*ucli.Command)
	walk = func(path string, cmds []*ucli.Command) {
		for _, c := range cmds {
			check(path+" "+c.Name, c.Description+"\n"+c.UsageText)
			walk(path+" "+c.Name, c.Subcommands)
		}
	}
	check(app.Name, app.Description+"\n"+app.UsageText)
	walk(app.Name, app.Commands)
	return n
}
