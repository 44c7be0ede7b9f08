package wake

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
)

func start(t *testing.T, o Options) (*Runner, chan struct{}) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the test commands are sh")
	}
	r := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r, done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 15*time.Second, what, cond)
}

// A burst of mail runs the command once, with the burst's count and seq in
// its environment, and the run is recorded with its exit code.
func TestBurstRunsOnce(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "runs.log")
	state := filepath.Join(dir, "state.json")
	r, done := start(t, Options{ID: "CODEX", Debounce: 200 * time.Millisecond, MaxRuns: 2, StateFile: state,
		Command: `echo "run $RELAY_WATCH_ID $RELAY_WATCH_COUNT $RELAY_WATCH_SEQ" >> ` + log + `; exit 3`})
	r.Notify(protocol.Mail{For: "CODEX", Count: 0, Seq: 9}) // nothing unread: no run
	r.Notify(protocol.Mail{For: "OTHER", Count: 4, Seq: 9}) // not watched
	for i := 1; i <= 5; i++ {
		r.Notify(protocol.Mail{For: "CODEX", Count: i, Seq: uint64(10 + i)})
	}
	waitFor(t, "the run to be recorded", func() bool { st, err := ReadState(state); return err == nil && st.Runs == 1 })
	// Another mail, later: a second burst, a second run (then MaxRuns ends Run).
	r.Notify(protocol.Mail{For: "CODEX", Count: 6, Seq: 16})
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not end after MaxRuns")
	}
	b, _ := os.ReadFile(log)
	if got := strings.TrimSpace(string(b)); got != "run CODEX 5 15\nrun CODEX 6 16" {
		t.Fatalf("runs:\n%s\nwant one per burst with the burst's count and seq", got)
	}
	st, err := ReadState(state)
	if err != nil {
		t.Fatal(err)
	}
	if st.Runs != 2 || st.Last == nil || st.Last.ExitCode != 3 || st.Last.Seq != 16 || st.ID != "CODEX" {
		t.Fatalf("state = %+v last %+v", st, st.Last)
	}
}

// Mail that comes while the command runs does not start a second one at
// the same time; it leads to exactly one more run after the first ends.
func TestNeverTwiceAtOnce(t *testing.T) {
	dir := t.TempDir()
	lock, log := filepath.Join(dir, "lock"), filepath.Join(dir, "runs.log")
	cmd := `mkdir ` + lock + ` || echo CONCURRENT >> ` + log + `; echo start >> ` + log + `; sleep 0.5; rmdir ` + lock
	r, done := start(t, Options{ID: "A", Debounce: 50 * time.Millisecond, MaxRuns: 3, Command: cmd})
	r.Notify(protocol.Mail{For: "A", Count: 1, Seq: 1})
	waitFor(t, "the first run", func() bool { b, _ := os.ReadFile(log); return strings.Contains(string(b), "start") })
	for i := 2; i <= 6; i++ { // during the run
		r.Notify(protocol.Mail{For: "A", Count: i, Seq: uint64(i)})
		time.Sleep(20 * time.Millisecond) // mail trickling in while the command runs is the case under test
	}
	waitFor(t, "the second run to finish", func() bool { return r.State().Runs == 2 })
	select {
	case <-done:
		t.Fatal("a third run happened without new mail")
	case <-time.After(700 * time.Millisecond):
	}
	b, _ := os.ReadFile(log)
	if got := string(b); strings.Contains(got, "CONCURRENT") || strings.Count(got, "start") != 2 {
		t.Fatalf("runs log:\n%s\nwant two runs, never overlapping", got)
	}
}

// With SkipOnline, mail for an id that is online runs nothing; the next
// mail once it is offline does.
func TestSkipOnline(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "runs.log")
	r, done := start(t, Options{ID: "A", Debounce: 50 * time.Millisecond, MaxRuns: 1, SkipOnline: true, Command: `echo "$RELAY_WATCH_SEQ" >> ` + log})
	r.Notify(protocol.Mail{For: "A", Count: 1, Seq: 1, Online: true})
	r.Notify(protocol.Mail{For: "A", Count: 2, Seq: 2, Online: true})
	time.Sleep(300 * time.Millisecond) // the test is that nothing runs: six debounce periods pass
	if r.State().Runs != 0 {
		t.Fatal("ran while the id was online")
	}
	r.Notify(protocol.Mail{For: "A", Count: 3, Seq: 3})
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("no run once offline")
	}
	if b, _ := os.ReadFile(log); strings.TrimSpace(string(b)) != "3" {
		t.Fatalf("runs: %q", b)
	}
}
