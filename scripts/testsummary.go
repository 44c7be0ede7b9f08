//go:build ignore

// testsummary reads `go test -json` on stdin and prints what a person needs
// from a test run: one line per package (as `go test` does), the whole output
// of every failed test, and at the end every skipped test with the reason it
// gave, then one closing line "N passed, N failed, N skipped". It exits 1 when
// anything failed, including a package that did not build.
//
//	go test -json ./... | go run scripts/testsummary.go
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	ImportPath  string // build-output, build-fail
	FailedBuild string
}

type testKey struct{ pkg, test string }

type summary struct {
	out      io.Writer
	output   map[testKey][]string // output of tests still running or failed
	pkgOut   map[string][]string  // package-level output (panics) by package
	buildOut map[string][]string  // compiler output by import path
	skipped  map[testKey]string   // reason for each skipped test
	passed   int
	failed   []testKey
	pkgFails []string
}

func newSummary(out io.Writer) *summary {
	return &summary{
		out:      out,
		output:   map[testKey][]string{},
		pkgOut:   map[string][]string{},
		buildOut: map[string][]string{},
		skipped:  map[testKey]string{},
	}
}

func (s *summary) add(e event) {
	k := testKey{e.Package, e.Test}
	switch e.Action {
	case "build-output":
		s.buildOut[e.ImportPath] = append(s.buildOut[e.ImportPath], e.Output)
	case "output":
		if e.Test == "" {
			s.pkgOut[e.Package] = append(s.pkgOut[e.Package], e.Output)
			return
		}
		s.output[k] = append(s.output[k], e.Output)
	case "pass":
		if e.Test == "" {
			fmt.Fprintf(s.out, "ok  \t%s\t%.1fs\n", e.Package, e.Elapsed)
			delete(s.pkgOut, e.Package)
			return
		}
		s.passed++
		delete(s.output, k)
	case "skip":
		if e.Test == "" {
			fmt.Fprintf(s.out, "?   \t%s\t[no test files]\n", e.Package)
			delete(s.pkgOut, e.Package)
			return
		}
		s.skipped[k] = skipReason(s.output[k])
		delete(s.output, k)
	case "fail":
		if e.Test == "" {
			// A package fails outside its tests too when it does not build or
			// its test binary dies (panic, timeout): show all it printed.
			out := strings.Join(s.buildOut[e.FailedBuild], "") + strings.Join(s.pkgOut[e.Package], "")
			if !strings.Contains(out, "FAIL\t"+e.Package) {
				out += fmt.Sprintf("FAIL\t%s\t%.1fs\n", e.Package, e.Elapsed)
			}
			fmt.Fprint(s.out, out)
			s.pkgFails = append(s.pkgFails, e.Package)
			return
		}
		s.failed = append(s.failed, k)
		fmt.Fprintf(s.out, "--- FAIL: %s (%s)\n%s", e.Test, e.Package, strings.Join(s.output[k], ""))
		delete(s.output, k)
	}
}

// skipReason picks the message a test gave to t.Skip: the last "file.go:N: …"
// line of its output that is not a log line, without the location.
func skipReason(lines []string) string {
	reason := "no reason given"
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") || l == "" {
			continue
		}
		if strings.Contains(l, " level=") && strings.Contains(l, " msg=") {
			continue // a server's log line, written by cleanups after the skip
		}
		if i := strings.Index(l, ".go:"); i >= 0 {
			if j := strings.Index(l[i+4:], ": "); j >= 0 {
				l = l[i+4+j+2:]
			}
		}
		reason = l
	}
	return reason
}

// finish prints the skip list and the closing line, and reports whether the
// run passed.
func (s *summary) finish() bool {
	keys := make([]testKey, 0, len(s.skipped))
	for k := range s.skipped {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].pkg != keys[j].pkg {
			return keys[i].pkg < keys[j].pkg
		}
		return keys[i].test < keys[j].test
	})
	if len(keys) == 0 {
		fmt.Fprintln(s.out, "skipped: none")
	} else {
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s (%s)", k.test, s.skipped[k])
		}
		fmt.Fprintf(s.out, "skipped: %s\n", strings.Join(parts, "; "))
	}
	failed := len(s.failed)
	for _, p := range s.pkgFails { // a package that failed with no failed test
		if !slices.ContainsFunc(s.failed, func(k testKey) bool { return k.pkg == p }) {
			failed++
		}
	}
	fmt.Fprintf(s.out, "%d passed, %d failed, %d skipped\n", s.passed, failed, len(keys))
	return failed == 0
}

func main() {
	s := newSummary(os.Stdout)
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(os.Stdout, "%s\n", line) // go vet or the go command speaking outside JSON
			continue
		}
		s.add(e)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: read: %v\n", err)
		os.Exit(1)
	}
	if !s.finish() {
		os.Exit(1)
	}
}
