package app

import (
	"io"
	"testing"

	"github.com/urfave/cli/v2"
)

// repoRoot is the repository's root, from this package's folder.
const repoRoot = "../../.."

// relaydRules: relayd service install passes what follows "--" to the
// relayd it runs, so those must be relayd's own flags.
var relaydRules = argRules{afterDashDash: map[string][]cli.Flag{"relayd service install": New(io.Discard, io.Discard).Flags}}

// Every relayd command line in README.md and docs/*.md names commands and
// flags relayd has, so the documents cannot rot unnoticed.
func TestDocCommands(t *testing.T) {
	problems, n := docProblems(t, repoRoot, New(io.Discard, io.Discard), relaydRules)
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d relayd command lines in the documents", n)
	if n < 20 {
		t.Errorf("found only %d relayd command lines in the documents: is the extraction broken?", n)
	}
}

// The examples in relayd's --help are documents too.
func TestHelpExamples(t *testing.T) {
	if n := checkHelpExamples(t, New(io.Discard, io.Discard), relaydRules); n < 10 {
		t.Errorf("found only %d examples in relayd's help: is the extraction broken?", n)
	}
}
