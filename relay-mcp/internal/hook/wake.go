package hook

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
)

// The wake listener: Claude Code runs `relay-mcp hook claude-code --wake
// Stop` as an async Stop hook with asyncRewake. It waits in the background
// after the turn ends; when mail arrives that the model has not seen, it
// exits 2 with that mail on stderr, and Claude Code starts a new turn with
// it (or injects it into a turn under way).
//
// It must never wake for mail the model has seen, or the woken turn's own
// Stop would start a listener that wakes it again, forever. Seen means:
// marked read (shown whole by a hook, read with relay_receive) or noticed
// (named in a summary, hook-state.json). And a conversation between two
// agents that wake each other is bounded: after MaxWakes wakes in a row
// with no prompt from the person, the listener stands down and the mail
// waits for the next prompt.

// WatchedFiles are the inbox directory's files whose changes the listener
// looks at: the mail log and the server's link state.
var WatchedFiles = []string{"messages.jsonl", linkStateFile}

// Wake limits.
const (
	// DefaultMaxWakes is how many times in a row the listener wakes a
	// session without a prompt from its person in between.
	DefaultMaxWakes = 10
	// DefaultIdleLimit is how long a listener waits for mail before it
	// stands down (the next turn's Stop starts a new one).
	DefaultIdleLimit = 12 * time.Hour
	// WakeMaxShown is the most messages one wake shows whole; the rest is
	// summarised with how to read it.
	WakeMaxShown = 20
	// wakeSettle lets a burst of mail land before the wake, so one wake
	// shows all of it.
	wakeSettle = 50 * time.Millisecond
	// wakeCheckEvery is how often the listener checks that its session
	// still runs and the idle limit: the only timer it has.
	wakeCheckEvery = 5 * time.Second
)

// WakeOptions configure Listen.
type WakeOptions struct {
	Self string // this session's relay id
	Dir  string // the inbox directory (watched, and holds the hooks' state)
	// Open opens the mailbox for one look; the listener holds no lock
	// while it waits. Close is called after the look.
	Open func() (Mailbox, func(), error)
	// SessionAlive reports whether the agent session still runs.
	SessionAlive func() bool
	IdleLimit    time.Duration // defaults to DefaultIdleLimit
	MaxWakes     int           // defaults to DefaultMaxWakes; <0 means no wakes
	// Changed returns a channel that receives when the inbox directory may
	// have changed (file notifications); defaults to a 2 s tick.
	Changed <-chan struct{}
	Now     func() time.Time
}

// WakeResult is how Listen ended.
type WakeResult struct {
	Wake   bool   // exit 2 with Text on stderr
	Text   string // the mail, framed as data from peers
	Reason string // why it stood down, when not Wake
}

// Listen waits for mail the model has not seen and returns it to wake the
// session, or stands down (session gone, idle limit, wake limit, ctx).
func Listen(ctx context.Context, o WakeOptions) (WakeResult, error) {
	if o.IdleLimit <= 0 {
		o.IdleLimit = DefaultIdleLimit
	}
	if o.MaxWakes == 0 {
		o.MaxWakes = DefaultMaxWakes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionAlive == nil {
		o.SessionAlive = func() bool { return true }
	}
	changed := o.Changed
	if changed == nil {
		tctx, stop := context.WithCancel(ctx) // the poll ends with Listen
		defer stop()
		changed = tick(tctx, 2*time.Second)
	}
	check := time.NewTicker(wakeCheckEvery)
	defer check.Stop()
	idle := time.NewTimer(o.IdleLimit)
	defer idle.Stop()
	server, serverUp := ReadLinkState(o.Dir)
	for {
		// The session's relay-mcp server ends with the session: a
		// listener whose server has closed stands down at once (Claude
		// Code waits for async hooks when it exits).
		if serverUp {
			if s, ok := ReadLinkState(o.Dir); !ok || s.PID != server.PID || s.State == "closed" {
				return WakeResult{Reason: "the session's relay-mcp has ended"}, nil
			}
		}
		res, err := wakeLook(o)
		if err != nil || res.Wake || res.Reason != "" {
			return res, err
		}
		select {
		case <-ctx.Done():
			return WakeResult{Reason: "stopped"}, nil
		case <-idle.C:
			return WakeResult{Reason: fmt.Sprintf("no mail within the idle limit (%s)", o.IdleLimit)}, nil
		case <-check.C:
			if !o.SessionAlive() {
				return WakeResult{Reason: "the session has ended"}, nil
			}
		case <-changed:
			// Let the rest of a burst land, then look.
			t := time.NewTimer(wakeSettle)
		settle:
			for {
				select {
				case <-changed:
				case <-t.C:
					break settle
				case <-ctx.Done():
					t.Stop()
					return WakeResult{Reason: "stopped"}, nil
				}
			}
		}
	}
}

// wakeLook looks once: mail the model has not seen wakes the session.
func wakeLook(o WakeOptions) (WakeResult, error) {
	mb, done, err := o.Open()
	if err != nil {
		return WakeResult{}, nil // a busy inbox: look again at the next change
	}
	defer done()
	st := loadState(o.Dir)
	n := look(mb, o.Self, st)
	var unseen []inbox.Entry
	for _, e := range n.Fresh {
		if !e.Read {
			unseen = append(unseen, e)
		}
	}
	if len(unseen) == 0 {
		return WakeResult{}, nil
	}
	if o.MaxWakes < 0 || st.Wakes >= o.MaxWakes {
		return WakeResult{Reason: fmt.Sprintf("woke this session %d times in a row without a prompt from its person; the mail waits for the next prompt", st.Wakes)}, nil
	}
	text, ids := presentWake(o.Self, n.Unread)
	if len(ids) > 0 {
		if err := mb.MarkRead(ids...); err != nil {
			return WakeResult{}, err
		}
	}
	st.NoticedUpTo = newest(n.Unread)
	st.Wakes++
	if err := saveState(o.Dir, st); err != nil {
		return WakeResult{}, err
	}
	return WakeResult{Wake: true, Text: text}, nil
}

// presentWake shows as much of the unread mail as the budget allows, oldest
// first, and summarises the rest with how to read it.
func presentWake(self string, es []inbox.Entry) (string, []string) {
	var shown []inbox.Entry
	size := 0
	for _, e := range es {
		sz := min(len(e.Body), ShowBytes)
		if len(shown) >= WakeMaxShown || size+sz > MaxContextBytes {
			break
		}
		shown = append(shown, e)
		size += sz
	}
	ids := make([]string, len(shown))
	for i, e := range shown {
		ids[i] = e.ID
	}
	var b strings.Builder
	fmt.Fprintf(&b, "claude-relay: mail for you (%s) arrived after your last turn; this turn was started to show it. ", self)
	b.WriteString(render(self, shown))
	if rest := es[len(shown):]; len(rest) > 0 {
		b.WriteString("\n" + strings.Replace(Summary(rest), "unread message(s)", "more unread message(s)", 1))
	}
	return b.String(), ids
}
