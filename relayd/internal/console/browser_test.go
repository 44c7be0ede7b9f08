//go:build unix

package console_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

// TestBrowserLiveTimeline drives the console in headless Chromium and
// Firefox: two
// agents come online and exchange mail; the page shows each message within
// a second without a reload, its body as text (markup stays text), and its
// stages for the recipient moving stored → delivered → read as the
// recipient acks and reads. When the page loses the relay it says so, and
// the banner goes once it is back.
func TestBrowserLiveTimeline(t *testing.T) { eachBrowser(t, testLiveTimeline) }

func testLiveTimeline(t *testing.T, b *browser) {
	var cut cutter
	r := startRelay(t, relayOpts{wrap: cut.wrap})
	cc1 := r.agent("CC-1", "refactoring the store")
	b.navigate(r.url + "/console")
	b.waitJS("the console to be ready", `document.body.dataset.ready === "1"`)
	b.waitJS("the live feed", `document.getElementById("conn").textContent === "live"`)
	b.waitJS("CC-1 online with its status", `(() => { const tr = document.querySelector('#peers tr[data-peer="CC-1"]');
		return tr && tr.classList.contains("online") && tr.querySelector(".status").textContent === "refactoring the store"; })()`)

	cc2 := r.agent("CC-2", "")
	b.waitJS("CC-2 to appear online without a reload", `document.querySelector('#peers tr.online[data-peer="CC-2"]')`)

	body := `<img src=x onerror="document.title='pwned'"> the migration is done; run make test`
	start := time.Now()
	acc, ok := cc1.sendTo("m1", "CC-2", body).(*protocol.Accepted)
	acceptedAt := time.Now()
	if !ok {
		t.Fatal("CC-1's send was refused")
	}
	sel := `document.querySelector('#timeline li[data-id="` + acc.ID + `"]')`
	b.waitJS("the message on the timeline", sel)
	// The page stamps when it put the message on screen (same clock).
	var shownAt int64
	b.must(`Number(`+sel+`.dataset.shownAt)`, &shownAt)
	if took := time.UnixMilli(shownAt).Sub(start); took > time.Second {
		t.Errorf("the message took %s to show on the timeline; want within 1 s", took.Round(time.Millisecond))
	} else {
		t.Logf("message on screen %s after the send (accepted after %s)", took.Round(time.Millisecond), acceptedAt.Sub(start).Round(time.Millisecond))
	}
	var shown struct {
		Text  string `json:"text"`
		Imgs  int    `json:"imgs"`
		Title string `json:"title"`
	}
	b.must(`(() => { const li = `+sel+`; return {text: li.querySelector(".body").textContent,
		imgs: document.querySelectorAll("#timeline img").length, title: document.title}; })()`, &shown)
	if shown.Text != body || shown.Imgs != 0 || shown.Title == "pwned" {
		t.Errorf("the body was not set as text: %+v", shown)
	}

	stage := sel + `.querySelector('.rcpt[data-to="CC-2"]').dataset.state`
	b.waitJS("stage stored", stage+` === "stored"`)
	m := expectFrame[*protocol.Message](cc2)
	cc2.send(&protocol.Ack{Upto: m.Seq})
	took := b.waitJS("stage delivered after CC-2's ack", stage+` === "delivered"`)
	t.Logf("delivered on screen %s after the ack", took.Round(time.Millisecond))
	cc2.send(&protocol.Read{IDs: []string{m.ID}})
	took = b.waitJS("stage read after CC-2's read report", stage+` === "read"`)
	t.Logf("read on screen %s after the read report", took.Round(time.Millisecond))
	var times []string
	b.must(`[...`+sel+`.querySelectorAll('.rcpt[data-to="CC-2"] .stage.done')].map(s => s.textContent)`, &times)
	if len(times) != 3 || !strings.HasPrefix(times[0], "stored ") || !strings.HasPrefix(times[2], "read ") {
		t.Errorf("stages on screen %q, want stored, delivered and read, each with its time", times)
	}

	// The reply, and a status change, arrive too.
	acc2 := cc2.sendTo("m2", "CC-1", "thanks, looking").(*protocol.Accepted)
	b.waitJS("the reply", `document.querySelector('#timeline li[data-id="`+acc2.ID+`"]')`)
	cc2.send(&protocol.Status{Ref: "s", Status: "reviewing CC-1's migration"})
	b.waitJS("CC-2's new status", `document.querySelector('#peers tr[data-peer="CC-2"] .status').textContent === "reviewing CC-1's migration"`)

	// Filter by pair: only their exchange; by a thread nobody used: nothing.
	b.must(`document.getElementById("f-peer").value = "CC-2"; document.getElementById("f-peer").dispatchEvent(new Event("change"))`, nil)
	b.waitJS("CC-2's conversations", `document.querySelectorAll("#timeline li.msg").length === 2`)
	b.must(`document.getElementById("f-thread").value = "nope"; document.getElementById("f-thread").dispatchEvent(new Event("change"))`, nil)
	b.waitJS("an empty thread", `document.querySelectorAll("#timeline li.msg").length === 0`)

	// The page loses the relay: it says so, then reconnects by itself.
	cut.cut(2 * time.Second)
	b.waitJS("the lost-relay banner", `!document.getElementById("banner").hidden && document.getElementById("conn").textContent === "offline"`)
	took = b.waitJS("the banner to go once the relay is back", `document.getElementById("banner").hidden && document.getElementById("conn").textContent === "live"`)
	t.Logf("reconnected %s after the banner", took.Round(time.Millisecond))
}

// cutter ends the console's event streams and refuses new ones for a
// while: the page's view of a relay that went away and came back.
type cutter struct {
	mu     sync.Mutex
	until  time.Time
	cancel []chan struct{}
}

func (c *cutter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/console/api/events" {
			h.ServeHTTP(w, r)
			return
		}
		c.mu.Lock()
		if time.Now().Before(c.until) {
			c.mu.Unlock()
			http.Error(w, "relay away", http.StatusServiceUnavailable)
			return
		}
		stop := make(chan struct{})
		c.cancel = append(c.cancel, stop)
		c.mu.Unlock()
		ctx, cancel := contextWithStop(r, stop)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (c *cutter) cut(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.until = time.Now().Add(d)
	for _, s := range c.cancel {
		close(s)
	}
	c.cancel = nil
}
