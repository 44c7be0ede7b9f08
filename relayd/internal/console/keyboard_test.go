//go:build unix

package console_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
)

// focusProbe describes the focused element: an id or what it is, and
// whether it is visibly marked (an outline of some width).
const focusProbe = `(() => { const e = document.activeElement; const cs = getComputedStyle(e);
	return {id: e.id || (e.classList.contains("hold") ? "hold" : e.classList.contains("release") ? "release" : e.tagName.toLowerCase() + "." + e.className),
		outline: cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 1}; })()`

// restart puts the focus on the page's first control, for Tab to start
// from the top.
const restart = `document.querySelector("#logout button").focus()`

type focused struct {
	ID      string `json:"id"`
	Outline bool   `json:"outline"`
}

// tabTo presses Tab until the element named want has the focus, checking
// that every stop on the way is visibly marked, and returns the stops.
func tabTo(t *testing.T, b *browser, want string, most int) []string {
	t.Helper()
	var stops []string
	for range most {
		b.press("Tab")
		var f focused
		b.must(focusProbe, &f)
		stops = append(stops, f.ID)
		if !f.Outline && f.ID != "body." {
			t.Errorf("focus on %s is not visible (no outline)", f.ID)
		}
		if f.ID == want {
			return stops
		}
	}
	t.Fatalf("%d presses of Tab never reached %s; the stops were %v", most, want, stops)
	return nil
}

// TestBrowserKeyboard: the console used with the keyboard alone, in both
// engines. Tab reaches the filters, the search box, the hold button of a
// loop alert, the composer and the release button, each stop visibly
// marked; Enter in the search box searches, Enter on Hold holds, Enter on
// Send posts, Enter on Release releases.
func TestBrowserKeyboard(t *testing.T) { eachBrowser(t, testKeyboard) }

func testKeyboard(t *testing.T, b *browser) {
	r := startRelay(t, relayOpts{hub: func(o *hub.Options) { o.Limits.Loop = ratelimit.Rate{N: 6, Per: time.Minute} }})
	cc1 := r.agent("CC-1", "writing the parser")
	cc2 := r.agent("CC-2", "reviewing")
	if !loop(t, cc1, cc2, "") {
		t.Fatal("the relay never warned of the loop")
	}
	b.navigate(r.url + "/console")
	b.waitJS("the console with a loop alert", `document.body.dataset.ready === "1" && document.getElementById("conn").textContent === "live" &&
		document.querySelector("#alerts button.hold")`)

	stops := tabTo(t, b, "hold", 40)
	b.press("Enter")
	b.waitJS("the pair held from the keyboard", `document.querySelector('#alerts .alert.held button.release')`)
	if e, ok := cc1.sendTo("h", "CC-2", "one more").(*protocol.ErrorFrame); !ok || e.Code != protocol.CodeRateLimited {
		t.Errorf("CC-1 → CC-2 after Hold by keyboard: %+v, want refused", e)
	}
	// The hold button is gone with its alert: start again from the top.
	b.must(restart, nil)
	stops = append(stops, tabTo(t, b, "f-search", 60)...)
	b.typeText("thanks")
	b.press("Enter")
	b.waitJS("search results from the keyboard", `/^[1-9][0-9]* found for “thanks”$/.test(document.getElementById("found").textContent)`)
	stops = append(stops, tabTo(t, b, "c-body", 80)...)
	b.typeText("Stop thanking each other.")
	stops = append(stops, tabTo(t, b, "c-send", 5)...)
	b.press("Enter")
	var focusID string
	m := cc1.nextMessage()
	for !m.Person { // the loop's messages first
		m = cc1.nextMessage()
	}
	if !m.Person || m.Body != "Stop thanking each other." {
		t.Errorf("CC-1 got %+v, want the post typed and sent from the keyboard", m)
	}
	b.waitJS("the composer's report", `document.getElementById("c-result").textContent.startsWith("sent to")`)
	if b.must(`document.activeElement.id`, &focusID); focusID != "c-send" && focusID != "c-body" {
		t.Errorf("after sending, the focus is on %q; want it kept in the composer (a keyboard user keeps their place)", focusID)
	}
	b.must(restart, nil)
	stops = append(stops, tabTo(t, b, "release", 40)...)
	b.press("Enter")
	b.waitJS("the hold released from the keyboard", `!document.querySelector('#alerts .alert.held')`)
	if _, ok := cc1.sendTo("after", "CC-2", "back to work").(*protocol.Accepted); !ok {
		t.Error("CC-1 → CC-2 refused after Release by keyboard")
	}
	for _, want := range []string{"f-peer", "f-with", "f-thread", "f-search", "c-as", "c-to", "c-thread", "c-body", "c-send", "hold", "release"} {
		if !slices.Contains(stops, want) {
			t.Errorf("Tab never stopped at %s; stops: %s", want, strings.Join(stops, " "))
		}
	}
}

// TestBrowserPhoneWidth: at 375 CSS pixels (a phone) the page does not
// scroll sideways, and the timeline stays readable: message bodies wrap
// inside the screen at a readable size, stages included.
func TestBrowserPhoneWidth(t *testing.T) { eachBrowser(t, testPhoneWidth) }

func testPhoneWidth(t *testing.T, b *browser) {
	r := startRelay(t, relayOpts{})
	cc1 := r.agent("CC-1-with-a-rather-long-session-name", "refactoring /home/dev/src/a/very/long/path/that/does/not/wrap/easily/at/all")
	r.agent("CC-2", "")
	cc1.sendTo("a", "CC-2", "a long line without spaces: "+strings.Repeat("abcdefghij", 20))
	cc1.sendTo("b", "CC-2", "the migration is done;\nrun make test and tell me what fails, with the full output please")
	b.viewport(375, 812)
	b.navigate(r.url + "/console")
	b.waitJS("the console with both messages", `document.body.dataset.ready === "1" && document.querySelectorAll("#timeline li.msg").length === 2`)
	var got struct {
		ScrollWidth, InnerWidth, BodyWidth, FontPx, Overflowing int
	}
	b.must(`(() => { const body = document.querySelector("#timeline li.msg .body");
		return {scrollWidth: document.scrollingElement.scrollWidth, innerWidth: innerWidth,
			bodyWidth: Math.round(body.getBoundingClientRect().width), fontPx: Math.round(parseFloat(getComputedStyle(body).fontSize)),
			overflowing: [...document.querySelectorAll("#timeline li.msg, #timeline li.msg *")].filter(e => e.getBoundingClientRect().right > innerWidth + 0.5).length}; })()`, &got)
	t.Logf("at 375 px: %+v", got)
	if got.InnerWidth != 375 {
		t.Fatalf("the viewport is %d px wide, want 375", got.InnerWidth)
	}
	if got.ScrollWidth > got.InnerWidth {
		t.Errorf("the page scrolls sideways at 375 px: scrollWidth %d > innerWidth %d", got.ScrollWidth, got.InnerWidth)
	}
	if got.BodyWidth < 250 || got.FontPx < 12 || got.Overflowing != 0 {
		t.Errorf("the timeline at 375 px: bodies %d px wide at %d px type, %d elements past the right edge; want ≥ 250 px, ≥ 12 px, none",
			got.BodyWidth, got.FontPx, got.Overflowing)
	}
}
