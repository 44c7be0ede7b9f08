//go:build unix

package console_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// TestBrowserScale measures the console with 200 peers online and 50 000
// messages in history: time to first render (snapshot loaded and drawn)
// and to apply an update (a message sent → on screen). It is heavy (it
// fills a store and opens 200 connections), so it runs when
// CONSOLE_SCALE=1 (in Chromium; CONSOLE_SCALE=firefox measures Firefox);
// docs/console.md has its figures.
func TestBrowserScale(t *testing.T) {
	engine := os.Getenv("CONSOLE_SCALE")
	if engine == "" {
		t.Skip("the 200-peer, 50 000-message console measurement runs with CONSOLE_SCALE=1, or =firefox (heavy: fills a store, opens 200 connections)")
	}
	const peers, history = 200, 50000
	b := startBrowser(t)
	if engine == "firefox" {
		b = &browser{t: t, drv: startFirefox(t)}
	}
	r := startRelay(t, relayOpts{})
	st := r.hub.Store()
	ctx := context.Background()
	ids := make([]string, peers)
	for i := range ids {
		ids[i] = fmt.Sprintf("agent-%03d", i)
		st.Touch(ctx, store.SessionInfo{ID: ids[i], Host: "host", Agent: "claude-code", FirstSeen: time.Now(), LastSeen: time.Now()})
	}
	fill := time.Now()
	done := make(chan error, history)
	base := time.Now().Add(-time.Hour)
	for i := range history {
		from, to := ids[i%peers], ids[(i*7+1)%peers]
		m := store.Message{ID: fmt.Sprintf("0000-%08d", i), From: from, To: []string{to}, Body: fmt.Sprintf("message %d: the build of module %d passes", i, i%37),
			TS: base.Add(time.Duration(i) * time.Millisecond), Thread: fmt.Sprintf("task-%d", i%50)}
		st.Submit(m, []string{to}, 0, nil, func(r store.Submitted) { done <- r.Err })
	}
	for range history {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("stored %d messages in %s", history, time.Since(fill).Round(time.Millisecond))
	agents := make([]*agent, peers)
	for i, id := range ids {
		agents[i] = r.agent(id, "working on task "+fmt.Sprint(i%50))
	}

	start := time.Now()
	b.navigate(r.url + "/console")
	b.waitJS("the console", `document.body.dataset.ready === "1" && document.querySelectorAll("#peers tbody tr.online").length === `+fmt.Sprint(peers))
	var first float64
	b.must(`window.consoleMetrics.firstRender`, &first)
	t.Logf("first render: %.0f ms in the page (snapshot of %d peers + %d-message page fetched and drawn); %s from navigation to all %d peers online on screen",
		first, peers, 200, time.Since(start).Round(time.Millisecond), peers)
	var timings []string
	b.must(`performance.getEntriesByType("resource").filter(e => e.name.includes("/api/")).map(e => e.name.replace(/^.*\/api\//, "") + " " + Math.round(e.responseEnd - e.requestStart) + " ms")`, &timings)
	t.Logf("API answers: %v", timings)
	if first > 3000 {
		t.Errorf("first render took %.0f ms; want under 3 s", first)
	}
	b.waitJS("the live feed", `document.getElementById("conn").textContent === "live"`)

	var lat []time.Duration
	for i := range 20 {
		from, to := agents[i], agents[i+1]
		sent := time.Now()
		acc, ok := from.sendTo(fmt.Sprintf("u%d", i), to.id, "update "+fmt.Sprint(i)).(*protocol.Accepted)
		if !ok {
			t.Fatal("send refused")
		}
		sel := `document.querySelector('#timeline li[data-id="` + acc.ID + `"]')`
		b.waitJS("update on screen", sel)
		var shownAt int64
		b.must(`Number(`+sel+`.dataset.shownAt)`, &shownAt)
		lat = append(lat, time.UnixMilli(shownAt).Sub(sent))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("apply an update (send → on screen), 20 sends: median %s, max %s", lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	if lat[len(lat)/2] > time.Second {
		t.Errorf("median update took %s; want under 1 s", lat[len(lat)/2])
	}
	// A filter over the whole history: one peer's conversations.
	fstart := time.Now()
	b.must(`document.getElementById("f-peer").value = "agent-007"; document.getElementById("f-peer").dispatchEvent(new Event("change"))`, nil)
	b.waitJS("agent-007's conversations", `[...document.querySelectorAll("#timeline li.msg")].length > 0 && [...document.querySelectorAll("#timeline li.msg .from")].every(x => true) && document.querySelector('#timeline li.msg') && [...document.querySelectorAll("#timeline li.msg")].every(li => li.textContent.includes("agent-007"))`)
	t.Logf("filter by one peer over %d messages: %s", history, time.Since(fstart).Round(time.Millisecond))
	b.must(`performance.getEntriesByType("resource").filter(e => e.name.includes("peer=")).map(e => Math.round(e.responseEnd - e.requestStart) + " ms")`, &timings)
	t.Logf("its API answer: %v", timings)
	// Search the whole history: the first search indexes the 50 000
	// messages stored since the store was opened, the next only looks.
	for _, q := range []string{"module 13", "passes 4999"} {
		sstart := time.Now()
		b.must(`document.getElementById("f-search").value = `+jsString(q)+`; document.getElementById("filters").requestSubmit()`, nil)
		b.waitJS("results for "+q, `document.getElementById("found").textContent.includes(`+jsString(q)+`) && document.querySelector("#timeline li.msg")`)
		b.must(`performance.getEntriesByType("resource").filter(e => e.name.includes("search?")).map(e => Math.round(e.responseEnd - e.requestStart) + " ms")`, &timings)
		t.Logf("search %q over %d messages: %s on screen, API answers so far %v", q, history, time.Since(sstart).Round(time.Millisecond), timings)
	}
	var load string
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = string(b)
	}
	t.Logf("load average during the run: %s", load)
}

// TestScreenshot takes docs/console.png: a realistic session (four agents
// on a task, a person stepping in, a loop alert). It runs when
// CONSOLE_SCREENSHOT names the file to write, in Chromium (that file) and
// in Firefox (beside it, NAME-firefox.png, not committed: it is there to
// show that the same session renders there too), and checks in each that
// the page drew the whole session within the window.
func TestScreenshot(t *testing.T) {
	out := os.Getenv("CONSOLE_SCREENSHOT")
	if out == "" {
		t.Skip("the screenshot for docs/console.png is taken with CONSOLE_SCREENSHOT=path")
	}
	out, _ = filepath.Abs(out)
	eachBrowser(t, func(t *testing.T, b *browser) {
		path := out
		if name := t.Name()[strings.LastIndex(t.Name(), "/")+1:]; name != "chromium" {
			path = strings.TrimSuffix(out, filepath.Ext(out)) + "-" + name + filepath.Ext(out)
		}
		screenshotSession(t, b, path)
	})
}

func screenshotSession(t *testing.T, b *browser, out string) {
	r := startRelay(t, relayOpts{hub: func(o *hub.Options) { o.Limits.Loop = ratelimit.Rate{N: 6, Per: time.Minute} }})
	lead := r.agent("CC-lead", "planning the auth rewrite: splitting tasks")
	api := r.agent("CC-api", "implementing token refresh in internal/auth")
	web := r.agent("CODEX-web", "updating the login form for the new flow")
	rev := r.agent("GEMINI-review", "reviewing PR #412")
	send := func(a *agent, ref, to, thread, replyTo, body string) string {
		a.send(&protocol.Send{Ref: ref, To: protocol.Recipients{to}, Body: body, Thread: thread, ReplyTo: replyTo})
		acc, ok := a.answer(ref).(*protocol.Accepted)
		if !ok {
			t.Fatalf("send %s refused", ref)
		}
		return acc.ID
	}
	m1 := send(lead, "1", "CC-api", "auth", "", "Task 1: add refresh tokens to internal/auth (rotate on use, 30-day expiry). Tests first, please.")
	send(lead, "2", "CODEX-web", "auth", "", "Task 2: the login form must handle a 401 with a refresh attempt before showing the error.")
	for _, a := range []*agent{api, web} {
		m := a.nextMessage()
		a.send(&protocol.Ack{Upto: m.Seq})
		a.send(&protocol.Read{IDs: []string{m.ID}})
	}
	send(api, "3", "CC-lead", "auth", m1, "On it. Question: do we keep the old session cookie for one release, or cut over?")
	m4 := send(api, "4", "GEMINI-review", "auth", "", "PR #412 is up: refresh token rotation + tests (go test ./internal/auth/... passes).")
	m := rev.nextMessage()
	rev.send(&protocol.Ack{Upto: m.Seq})
	// Two agents thanking each other in a loop.
	last := m4
	for i := range 6 {
		from, to := rev, api
		if i%2 == 1 {
			from, to = api, rev
		}
		last = send(from, fmt.Sprintf("l%d", i), to.id, "auth", last, []string{"Looks good, thanks!", "Thanks for the review!", "Thank you — merging when CI is green.", "Great, thanks!", "Thanks again!", "Anytime, thanks!"}[i])
	}
	b.viewport(1440, 900)
	b.navigate(r.url + "/console")
	b.waitJS("the console", `document.body.dataset.ready === "1" && document.getElementById("conn").textContent === "live" && document.querySelector("#alerts .alert.loop")`)
	b.must(`document.getElementById("c-as").value = "ana";
		document.getElementById("c-to").value = "CC-api";
		document.getElementById("c-thread").value = "auth";
		document.getElementById("c-body").value = "Keep the old cookie for one release — we have mobile clients on the old flow.";
		document.getElementById("compose").requestSubmit()`, nil)
	b.waitJS("the post on screen", `document.querySelector("#timeline li.msg.person")`)
	b.must(`document.getElementById("c-body").value = "CC-api, GEMINI-review: stop thanking each other and get back to the task."`, nil)
	time.Sleep(300 * time.Millisecond) // let the highlight settle for the picture
	var seen struct {
		Peers, Msgs, Person, Loops, Narrow int
		Wide                               bool
	}
	b.must(`({peers: document.querySelectorAll("#peers tbody tr").length, msgs: document.querySelectorAll("#timeline li.msg").length,
		person: document.querySelectorAll("#timeline li.msg.person").length, loops: document.querySelectorAll("#alerts .alert.loop button.hold").length,
		narrow: [...document.querySelectorAll("#timeline li.msg .body")].filter(e => e.getBoundingClientRect().width < 300).length,
		wide: document.scrollingElement.scrollWidth > innerWidth})`, &seen)
	if seen.Peers != 5 || seen.Msgs != 11 || seen.Person != 1 || seen.Loops != 1 || seen.Narrow != 0 || seen.Wide {
		t.Errorf("the session on screen: %+v; want 5 peers, 11 messages (1 a person's), the loop alert with Hold, bodies at least 300 px wide, nothing past the window", seen)
	}
	b.screenshot(out)
	t.Logf("wrote %s", out)
}
