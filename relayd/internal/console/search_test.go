//go:build unix

package console_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/protocol"
)

// TestBrowserSearch: the operator types words in the search box and presses
// Enter; the page lists every message of the history whose body holds
// them — not only what is on screen — with each recipient's stages, bodies
// as text; new matching messages join the results live, as the store
// would find them; clearing goes back to the live timeline.
func TestBrowserSearch(t *testing.T) { eachBrowser(t, testSearch) }

func testSearch(t *testing.T, b *browser) {
	r := startRelay(t, relayOpts{})
	cc1 := r.agent("CC-1", "")
	cc2 := r.agent("CC-2", "")
	want := map[string]bool{}
	for i, body := range []string{
		"the Migration to schema 5 is done",
		"lunch at noon?",
		"<b>migration</b> review: looks good, one nit",
		"unrelated chatter",
	} {
		from, to := cc1, "CC-2"
		if i%2 == 1 {
			from, to = cc2, "CC-1"
		}
		acc, ok := from.sendTo("s"+string(rune('a'+i)), to, body).(*protocol.Accepted)
		if !ok {
			t.Fatalf("send %d refused", i)
		}
		if strings.Contains(strings.ToLower(body), "migration") {
			want[acc.ID] = true
		}
	}
	// CC-2 reads the first: its stages say so in the results.
	m := cc2.nextMessage()
	cc2.send(&protocol.Ack{Upto: m.Seq})
	cc2.send(&protocol.Read{IDs: []string{m.ID}})

	b.navigate(r.url + "/console")
	b.waitJS("the console", `document.body.dataset.ready === "1" && !document.getElementById("f-search").parentElement.hidden`)
	b.waitJS("the four messages", `document.querySelectorAll("#timeline li.msg").length === 4`)
	b.must(`document.getElementById("f-search").focus()`, nil)
	b.typeText("MIGRAT")
	b.press("Enter")
	b.waitJS("two results", `document.querySelectorAll("#timeline li.msg").length === 2 &&
		document.getElementById("found").textContent.startsWith("2 found")`)
	var got []struct {
		ID     string            `json:"id"`
		Body   string            `json:"body"`
		Bold   int               `json:"bold"`
		Stages map[string]string `json:"stages"`
	}
	b.must(`[...document.querySelectorAll("#timeline li.msg")].map(li => ({id: li.dataset.id, body: li.querySelector(".body").textContent,
		bold: li.querySelectorAll("b").length,
		stages: Object.fromEntries([...li.querySelectorAll(".rcpt")].map(x => [x.dataset.to, x.dataset.state]))}))`, &got)
	for _, g := range got {
		if !want[g.ID] || g.Bold != 0 {
			t.Errorf("result %+v: want one of the two migration messages, markup as text", g)
		}
	}
	if len(got) == 2 && (got[0].Stages["CC-2"] != "read" || got[1].Stages["CC-2"] != "stored" ||
		got[1].Body != "<b>migration</b> review: looks good, one nit") {
		t.Errorf("results %+v: want the first read by CC-2, the second stored, oldest first", got)
	}
	// The results stay live: a new message whose words begin with the
	// search's joins them (any case, any accent), one where it only sits
	// inside a word does not, as on the store's index — running the
	// search again lists exactly what the page shows.
	for i, body := range []string{"immigration paperwork", "lunch again", "another Migration note", "Mìgration rollback at 5"} {
		if _, ok := cc1.sendTo("late"+string(rune('a'+i)), "CC-2", body).(*protocol.Accepted); !ok {
			t.Fatalf("live send %q refused", body)
		}
	}
	const shown = `[...document.querySelectorAll("#timeline li.msg")].map(li => li.querySelector(".body").textContent).join(" | ")`
	b.waitJS("the two new matches joining the results", `document.querySelector("#timeline li.msg:last-child .body").textContent === "Mìgration rollback at 5" &&
		document.getElementById("found").textContent.startsWith("4 found")`)
	var live, again string
	b.must(shown, &live)
	if want := "the Migration to schema 5 is done | <b>migration</b> review: looks good, one nit | another Migration note | Mìgration rollback at 5"; live != want {
		t.Errorf("live results: %s\nwant %s", live, want)
	}
	b.must(`document.querySelectorAll("#timeline li.msg").forEach(li => li.dataset.before = "1");
		document.getElementById("f-search").focus()`, nil)
	b.press("Enter")
	b.waitJS("the search run again", `document.getElementById("found").textContent.startsWith("4 found") &&
		document.querySelectorAll("#timeline li.msg").length > 0 && !document.querySelector("#timeline li.msg[data-before]")`)
	b.must(shown, &again)
	if again != live {
		t.Errorf("the search run again lists\n%s\nthe live results were\n%s", again, live)
	}
	b.must(`document.getElementById("f-clear").click()`, nil)
	b.waitJS("the whole timeline again", `document.querySelectorAll("#timeline li.msg").length === 8 &&
		document.getElementById("found").textContent === ""`)
}

// The search API answers an operator (bodies and stages); without a
// session it answers nothing (TestAccessWithToken), and odd input is
// only words.
func TestSearchAPI(t *testing.T) {
	r := startRelay(t, relayOpts{})
	cc1 := r.agent("CC-1", "")
	r.agent("CC-2", "")
	cc1.sendTo("a", "CC-2", `the token check uses == ; see auth.go:42`)
	for q, n := range map[string]int{"auth.go": 1, `"token" OR x`: 0, "TOKEN check": 1, "": 0, "col:body": 0} {
		resp, err := http.Get(r.url + "/console/api/search?q=" + url.QueryEscape(q))
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Messages []struct {
				Body   string `json:"body"`
				Stages []struct {
					To string `json:"to"`
				} `json:"stages"`
			} `json:"messages"`
		}
		body := readAll(t, resp)
		if err := json.Unmarshal([]byte(body), &res); err != nil || resp.StatusCode != 200 {
			t.Fatalf("search %q: %d %s", q, resp.StatusCode, body)
		}
		if len(res.Messages) != n {
			t.Errorf("search %q found %d, want %d", q, len(res.Messages), n)
		}
		if n == 1 && (res.Messages[0].Body != `the token check uses == ; see auth.go:42` || len(res.Messages[0].Stages) != 1) {
			t.Errorf("search %q: %+v, want the body and CC-2's stages", q, res.Messages[0])
		}
	}
}
