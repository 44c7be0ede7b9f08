package server

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/protocol"
)

// The dashboard tells what waits now for offline peers, not how much was
// ever queued: mail that reached its peer no longer counts.
func TestDashboardWaiting(t *testing.T) {
	r := startRelay(t)
	dash := func() (waiting, queuedTotal int) {
		t.Helper()
		resp, err := http.Get(r.hts.URL + "/dashboard.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d struct {
			Waiting *int `json:"waiting"`
			Queued  int  `json:"messages_queued"`
		}
		if err := jsonDecode(resp, &d); err != nil || d.Waiting == nil {
			t.Fatalf("dashboard.json: %+v, %v; want a waiting count", d, err)
		}
		return *d.Waiting, d.Queued
	}
	a, _ := r.connect("A", 0)
	b, _ := r.connect("B", 0)
	b.ws.CloseNow()
	waitFor(t, "B offline", func() bool { return len(r.srv.Hub.Peers()) == 1 })
	for _, ref := range []string{"1", "2"} {
		a.send(&protocol.Send{Ref: ref, To: protocol.Recipients{"B"}, Body: "while you were out " + ref})
		if acc := expect[*protocol.Accepted](a); acc.Recipients[0].Status != protocol.StatusQueued {
			t.Fatalf("status %+v, want queued", acc.Recipients)
		}
	}
	if w, q := dash(); w != 2 || q != 2 {
		t.Fatalf("waiting %d, queued total %d; want 2 and 2", w, q)
	}
	b, _ = r.connect("B", 0)
	expect[*protocol.Message](b)
	last := expect[*protocol.Message](b)
	b.send(&protocol.Ack{Upto: last.Seq})
	b.ws.CloseNow()
	waitFor(t, "B's mail counted as delivered", func() bool { w, _ := dash(); return w == 0 })
	if _, q := dash(); q != 2 {
		t.Fatalf("queued total %d; want still 2 (a running total)", q)
	}
	page, err := os.ReadFile("dashboard.html")
	if err != nil || !strings.Contains(string(page), "d.waiting") {
		t.Fatalf("dashboard.html does not show waiting (%v)", err)
	}
}
