package app

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/internal/doccheck"
)

// repoRoot is the repository's root, from this package's folder.
const repoRoot = "../../.."

// relaydRules: relayd service install passes what follows "--" to the
// relayd it runs, so those must be relayd's own flags.
var relaydRules = doccheck.Rules{AfterDashDash: map[string][]cli.Flag{"relayd service install": New(io.Discard, io.Discard).Flags}}

// Every relayd command line in README.md and docs/*.md names commands and
// flags relayd has, so the documents cannot rot unnoticed.
func TestDocCommands(t *testing.T) {
	doccheck.Check(t, repoRoot, New(io.Discard, io.Discard), relaydRules, 20)
}

// The examples in relayd's --help are documents too.
func TestHelpExamples(t *testing.T) {
	if n := doccheck.HelpExamples(t, New(io.Discard, io.Discard), relaydRules); n < 10 {
		t.Errorf("found only %d examples in relayd's help: is the extraction broken?", n)
	}
}

// Every relayd_ metric the documents name is one a real relayd serves on
// /metrics (with the labels they show), and docs/operations.md names every
// relayd_ metric it serves.
func TestDocMetrics(t *testing.T) {
	t.Setenv("RELAY_TOKEN", "")
	addr, _, stop := serveInProcess(t, "--store", "memory")
	defer stop()
	fams := scrape(t, addr, "")
	// A node of a cluster serves the relayd_cluster_ figures besides.
	caddr, _, cstop := serveInProcess(t, "--cluster", "embedded", "--data-dir", t.TempDir())
	defer cstop()
	for name, f := range scrape(t, caddr, "") {
		if _, ok := fams[name]; !ok {
			fams[name] = f
		}
	}

	ops, err := os.ReadFile(filepath.Join(repoRoot, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	sample := regexp.MustCompile(`\b(relayd_[a-z_]+)(\{[^}]*\})?`)
	label := regexp.MustCompile(`([a-z_]+)=`)
	for _, doc := range append([]string{"README.md"}, docNames(t)...) {
		b, err := os.ReadFile(filepath.Join(repoRoot, doc))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range sample.FindAllStringSubmatch(line, -1) {
				name := m[1]
				f, ok := fams[name]
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base := strings.TrimSuffix(name, suffix); !ok && base != name {
						f, ok = fams[base]
					}
				}
				if !ok {
					if name != "relayd_" { // grep '^relayd_'
						t.Errorf("%s:%d: %s is not a metric relayd serves", doc, i+1, name)
					}
					continue
				}
				named[f.GetName()] = true
				for _, l := range label.FindAllStringSubmatch(m[2], -1) {
					if l[1] != "le" && !hasLabel(f, l[1]) {
						t.Errorf("%s:%d: %s has no label %q", doc, i+1, name, l[1])
					}
				}
			}
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "relayd_") && !strings.Contains(string(ops), name) {
			t.Errorf("docs/operations.md does not mention %s, which relayd serves: add it to the metrics table", name)
		}
	}
	if len(named) < 10 {
		t.Errorf("the documents name only %d relayd metrics: is the extraction broken?", len(named))
	}
}

func hasLabel(f *dto.MetricFamily, name string) bool {
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return true
			}
		}
	}
	return false
}

// docNames are docs/*.md, relative to the repository root.
func docNames(t *testing.T) []string {
	var names []string
	for _, f := range doccheck.Files(t, repoRoot)[1:] {
		rel, _ := filepath.Rel(repoRoot, f)
		names = append(names, rel)
	}
	return names
}
