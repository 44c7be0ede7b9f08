//go:build unix

package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
)

// TestBrowserStepInAndHold: the operator writes to an agent from the page
// and the agent gets it marked as from a person; two agents caught in a
// loop raise an alert whose one click holds the pair (the relay refuses
// their messages to each other, both ways) and whose release lets them
// talk again.
func TestBrowserStepInAndHold(t *testing.T) { eachBrowser(t, testStepInAndHold) }

func testStepInAndHold(t *testing.T, b *browser) {
	r := startRelay(t, relayOpts{hub: func(o *hub.Options) { o.Limits.Loop = ratelimit.Rate{N: 6, Per: time.Minute} }})
	cc1 := r.agent("CC-1", "writing the parser")
	cc2 := r.agent("CC-2", "reviewing")
	b.navigate(r.url + "/console")
	b.waitJS("the console", `document.body.dataset.ready === "1" && document.getElementById("conn").textContent === "live"`)
	b.waitJS("CC-1 in the recipient list", `[...document.getElementById("c-to").options].some(o => o.value === "CC-1")`)

	// Step in.
	b.must(`document.getElementById("c-as").value = "ana";
		document.getElementById("c-to").value = "CC-1";
		document.getElementById("c-body").value = "Pause the parser work: the grammar changed upstream.";
		document.getElementById("compose").requestSubmit()`, nil)
	m := cc1.nextMessage()
	if !m.Person || m.From != protocol.PersonPrefix+"ana" || m.Body != "Pause the parser work: the grammar changed upstream." {
		t.Errorf("CC-1 got %+v, want the operator's message marked as from a person", m)
	}
	b.waitJS("the post on the timeline, marked as a person's", `document.querySelector('#timeline li.msg.person[data-id="`+m.ID+`"]')`)
	b.waitJS("the composer's report", `document.getElementById("c-result").textContent.includes("sent to CC-1")`)

	// CC-1 answers the person: the reply is read on the console, not
	// left unread in person.ana's mailbox (which no client acks).
	ans, ok := cc1.reply("to-ana", protocol.PersonPrefix+"ana", m.ID, "Paused. Which grammar version?").(*protocol.Accepted)
	if !ok {
		t.Fatal("CC-1's reply to the person was refused")
	}
	b.waitJS("the reply read by the person on the console", `document.querySelector('#timeline li.msg[data-id="`+ans.ID+`"] .rcpt[data-to="person.ana"]').dataset.state === "read"`)
	b.waitJS("person.ana with nothing unread", `document.querySelector('#peers tr[data-peer="person.ana"] .unread').textContent === "0"`)
	rs, err := r.hub.Store().Receipts(context.Background(), "CC-1", []string{ans.ID})
	if err != nil || len(rs) != 1 || rs[0].Read.IsZero() || !rs[0].DeliveredOK {
		t.Errorf("CC-1's receipts for its reply to the person: %+v, %v; want delivered and read", rs, err)
	}

	// A loop: replies back and forth.
	if !loop(t, cc1, cc2, m.ID) {
		t.Fatal("the relay never warned of the loop")
	}
	hold := `document.querySelector('#alerts .alert.loop[data-pair="CC-1,CC-2"] button.hold')`
	b.waitJS("the loop alert with its hold button", hold)
	b.must(hold+`.click()`, nil)
	b.waitJS("the pair shown held", `document.querySelector('#alerts .alert.held button.release') && !`+hold)
	// Who held it (the name in the composer) and since when, on screen
	// and in the store.
	b.waitJS("who held the pair", `document.querySelector('#alerts .alert.held[data-pair="CC-1,CC-2"] .who').textContent.startsWith("held by person.ana since ")`)
	if hs, err := r.hub.Store().Holds(context.Background(), 0); err != nil || len(hs) != 1 || hs[0].By != "person.ana" || hs[0].At.IsZero() {
		t.Errorf("the store's holds: %+v, %v; want CC-1 ↔ CC-2 held by person.ana", hs, err)
	}
	for i, from := range []*agent{cc1, cc2} {
		to := cc2
		if from == cc2 {
			to = cc1
		}
		e, ok := from.sendTo(fmt.Sprintf("h%d", i), to.id, "one more thanks").(*protocol.ErrorFrame)
		if !ok || e.Code != protocol.CodeRateLimited || !strings.Contains(e.Message, "operator") {
			t.Errorf("%s → %s while held: %+v, want rate_limited naming the operator's hold", from.id, to.id, e)
		}
	}
	// Others still reach them.
	cc3 := r.agent("CC-3", "")
	if _, ok := cc3.sendTo("x", "CC-1", "unrelated").(*protocol.Accepted); !ok {
		t.Error("a third agent was held too")
	}

	// Still shown after CC-3's arrival refreshed the page's state (a state
	// fetched before the hold once came back after it and hid the alert).
	release := `document.querySelector('#alerts .alert.held[data-pair="CC-1,CC-2"] button.release')`
	b.waitJS("the held pair's release button", release)
	b.must(release+`.click()`, nil)
	b.waitJS("the hold gone", `!document.querySelector('#alerts .alert.held')`)
	b.waitJS("the release shown, with who released it", `document.querySelector('#alerts .alert.released[data-pair="CC-1,CC-2"]').textContent.includes("released by person.ana")`)
	if _, ok := cc1.sendTo("after", "CC-2", "back to work").(*protocol.Accepted); !ok {
		t.Error("CC-1 → CC-2 refused after the release")
	}
}

// TestBrowserOtherOriginCannotReadOrPost: an operator logged in to the
// console (through its login form, in the same browser) visits a page of
// another origin, which tries to read the console's API and to post as
// the operator. It reads nothing, and nothing it posts reaches an agent.
func TestBrowserOtherOriginCannotReadOrPost(t *testing.T) { eachBrowser(t, testOtherOrigin) }

func testOtherOrigin(t *testing.T, b *browser) {
	const token = "relay-token-for-the-browser-0123"
	var log statusLog
	r := startRelay(t, relayOpts{token: token, wrap: log.wrap})
	cc1 := r.agent("CC-1", "")

	// Without the token: the login form and nothing else.
	b.navigate(r.url + "/console")
	var seen struct {
		Form, Timeline, Scripts int
	}
	b.must(`({form: document.querySelectorAll("form#login input[name=token]").length,
		timeline: document.querySelectorAll("#timeline").length, scripts: document.scripts.length})`, &seen)
	if seen.Form != 1 || seen.Timeline != 0 || seen.Scripts != 0 {
		t.Errorf("without the token the page is %+v, want only the login form", seen)
	}
	b.must(`document.getElementById("token").value = `+jsString(token)+`; document.getElementById("login").submit()`, nil)
	b.waitJS("the console after login", `document.body.dataset.ready === "1" && document.getElementById("conn").textContent === "live"`)

	before := map[string]int{}
	for _, p := range []string{"GET /console/api/messages", "GET /console/api/state"} {
		before[p] = log.count(p, http.StatusOK)
	}
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>elsewhere</title><p>another site</p>`)
	}))
	defer evil.Close()
	b.navigate(evil.URL + "/")
	var got map[string]string
	b.must(`(async () => {
		const relay = `+jsString(r.url)+`, out = {};
		try { const x = await fetch(relay + "/console/api/messages", {credentials: "include"}); out.read = "read " + x.status + " " + (await x.text()).slice(0, 80); }
		catch (e) { out.read = "blocked"; }
		try { const x = await fetch(relay + "/console/api/state", {credentials: "include"}); out.state = "read " + x.status; }
		catch (e) { out.state = "blocked"; }
		try { await fetch(relay + "/console/api/post", {method: "POST", mode: "no-cors", credentials: "include",
			headers: {"Content-Type": "text/plain"}, body: JSON.stringify({as: "evil", to: ["CC-1"], body: "from another site"})}); out.post = "sent"; }
		catch (e) { out.post = "blocked"; }
		try { const x = await fetch(relay + "/console/api/post", {method: "POST", credentials: "include",
			headers: {"Content-Type": "application/json", "X-Console-CSRF": "guess"}, body: JSON.stringify({to: ["CC-1"], body: "from another site"})}); out.post2 = "read " + x.status; }
		catch (e) { out.post2 = "blocked"; }
		return out;
	})()`, &got)
	t.Logf("the other origin's attempts: %v; the relay answered its posts %v", got, log.statuses("POST /console/api/post"))
	if got["read"] != "blocked" || got["state"] != "blocked" || got["post2"] != "blocked" {
		t.Errorf("a page of another origin read the console's answers: %v", got)
	}
	for _, st := range log.statuses("POST /console/api/post") {
		if st != http.StatusForbidden {
			t.Errorf("a post from another origin was answered %d, want 403", st)
		}
	}
	// The relay itself refused the other page's reads (the browser's
	// CORS check is not all that stands in the way).
	for p, n := range before {
		if after := log.count(p, http.StatusOK); after != n {
			t.Errorf("%s answered 200 to the other origin (%d times)", p, after-n)
		}
	}
	if n := log.count("POST /console/api/post", http.StatusOK); n != 0 {
		t.Errorf("%d posts went through", n)
	}
	// Nothing reached CC-1: the next message it gets is this one.
	cc2 := r.agent("CC-2", "")
	cc2.sendTo("c", "CC-1", "control")
	if m := cc1.nextMessage(); m.Body != "control" {
		t.Errorf("CC-1 got %q from %s, want only the control message", m.Body, m.From)
	}
}

// statusLog records the status of every answer by path.
type statusLog struct {
	mu sync.Mutex
	m  map[string][]int
}

func (l *statusLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/console") {
			h.ServeHTTP(w, r) // WebSocket upgrades need the Hijacker
			return
		}
		sw := &statusWriter{ResponseWriter: w, code: 200}
		h.ServeHTTP(sw, r)
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.m == nil {
			l.m = map[string][]int{}
		}
		l.m[r.Method+" "+r.URL.Path] = append(l.m[r.Method+" "+r.URL.Path], sw.code)
	})
}

func (l *statusLog) statuses(path string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.m[path]...)
}

func (l *statusLog) count(path string, code int) int {
	n := 0
	for _, c := range l.statuses(path) {
		if c == code {
			n++
		}
	}
	return n
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
