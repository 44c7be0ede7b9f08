package hook

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
)

type wakeFixture struct {
	t   *testing.T
	dir string
	in  *inbox.Inbox
	seq uint64
	// looked, when set, is closed once the next listen has looked at the
	// inbox the first time: mail delivered after it comes during the wait.
	looked chan struct{}
}

func newWakeFixture(t *testing.T) *wakeFixture {
	dir := t.TempDir()
	in, err := inbox.Open(dir, inbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return &wakeFixture{t: t, dir: dir, in: in}
}

// deliver stores a message as the server does when the relay pushes it.
func (f *wakeFixture) deliver(from, body string) string {
	f.seq++
	id := fmt.Sprintf("0193a1b2-0000-7000-8000-%012d", f.seq)
	if _, err := f.in.Add(protocol.Message{Seq: f.seq, ID: id, From: from, To: []string{"CC-2"}, Body: body, TS: time.Now().UTC()}); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *wakeFixture) listen(within time.Duration, maxWakes int) WakeResult {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	looked := f.looked
	f.looked = nil
	var once sync.Once
	changed, err := WatchDir(ctx, f.dir, WatchedFiles...)
	if err != nil {
		f.t.Fatal(err)
	}
	res, err := Listen(ctx, WakeOptions{Self: "CC-2", Dir: f.dir, MaxWakes: maxWakes, Changed: changed,
		Open: func() (Mailbox, func(), error) {
			mb, err := inbox.Open(f.dir, inbox.Options{LockWait: 100 * time.Millisecond})
			if err != nil {
				return nil, nil, err
			}
			return mb, func() {
				mb.Close()
				if looked != nil {
					once.Do(func() { close(looked) })
				}
			}, nil
		}})
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// The listener wakes for mail the model has not seen, all of it in one
// wake; never for its own messages nor for mail already shown; and a
// session woken MaxWakes times in a row without a prompt from its person
// is not woken again until the person prompts.
func TestListen(t *testing.T) {
	f := newWakeFixture(t)
	f.deliver("CC-2", "my own broadcast")
	if res := f.listen(300*time.Millisecond, 2); res.Wake {
		t.Fatalf("woke for the session's own message: %s", res.Text)
	}

	looked := make(chan struct{})
	f.looked = looked
	go func() {
		<-looked // the mail comes while the listener waits
		f.deliver("CC-1", "first")
		f.deliver("CC-1", "second")
	}()
	res := f.listen(5*time.Second, 2)
	if !res.Wake || !strings.Contains(res.Text, "first") || !strings.Contains(res.Text, "second") || !strings.Contains(res.Text, "data from peers") {
		t.Fatalf("wake 1: %+v", res)
	}
	if res := f.listen(300*time.Millisecond, 2); res.Wake {
		t.Fatalf("woke again for mail already shown: %s", res.Text)
	}
	f.deliver("CC-1", "third")
	if res := f.listen(time.Second, 2); !res.Wake || !strings.Contains(res.Text, "third") || strings.Contains(res.Text, "first") {
		t.Fatalf("wake 2: %+v", res)
	}
	f.deliver("CC-1", "fourth")
	if res := f.listen(time.Second, 2); res.Wake || !strings.Contains(res.Reason, "2 times in a row") {
		t.Fatalf("the third wake in a row without a prompt: %+v", res)
	}
	// The person prompts: the UserPromptSubmit hook shows the mail and
	// the count starts again.
	out, err := Claude(ClaudeInput{HookEventName: EventUserPromptSubmit, Prompt: "go on"}, f.in, ClaudeOptions{Self: "CC-2", Dir: f.dir})
	if err != nil || out.HookSpecificOutput == nil || !strings.Contains(out.HookSpecificOutput.AdditionalContext, "fourth") {
		t.Fatalf("prompt: %+v %v", out, err)
	}
	f.deliver("CC-1", "fifth")
	if res := f.listen(time.Second, 2); !res.Wake || !strings.Contains(res.Text, "fifth") {
		t.Fatalf("after a prompt: %+v", res)
	}
	// A woken turn's prompt (a task notification) does not reset it.
	Claude(ClaudeInput{HookEventName: EventUserPromptSubmit, Prompt: "<task-notification>\n…"}, f.in, ClaudeOptions{Self: "CC-2", Dir: f.dir})
	if st := loadState(f.dir); st.Wakes != 1 {
		t.Fatalf("wakes after a woken turn's prompt: %d", st.Wakes)
	}
}

// Many messages: as many as fit are shown, the rest summarised with how
// to read them.
func TestPresentWakeBudget(t *testing.T) {
	var es []inbox.Entry
	for i := 0; i < 8; i++ {
		e := inbox.Entry{Message: protocol.Message{ID: fmt.Sprintf("id-%d", i), From: "CC-1", Body: strings.Repeat("x", 1800), TS: time.Now()}}
		es = append(es, e)
	}
	text, ids := presentWake("CC-2", es)
	if len(ids) != 4 || !strings.Contains(text, "4 more unread message(s) from CC-1 (4); call relay_receive") {
		t.Fatalf("shown %d: %s", len(ids), text[len(text)-300:])
	}
}
