package link

import (
	"context"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/relaytest"
)

func TestParseURLs(t *testing.T) {
	got, err := ParseURLs([]string{"ws://127.0.0.1:1, 127.0.0.1:2", "", "ws://127.0.0.1:1/v1/ws", "wss://relay.example"})
	want := "ws://127.0.0.1:1/v1/ws ws://127.0.0.1:2/v1/ws wss://relay.example/v1/ws"
	if err != nil || strings.Join(got, " ") != want {
		t.Fatalf("ParseURLs = %q, %v; want %q", got, err, want)
	}
	if got, err := ParseURLs([]string{" , "}); err != nil || len(got) != 1 || got[0] != DefaultURL {
		t.Fatalf("empty list = %q, %v; want the default", got, err)
	}
	if _, err := ParseURLs([]string{"ws://127.0.0.1:1,ftp://x"}); err == nil || !strings.Contains(err.Error(), "ftp://x") {
		t.Fatalf("a bad URL in the list: %v", err)
	}
}

// A link with a list connects to the first relay that answers, stays there,
// and moves on to the next when it goes away; mail sent while between
// relays is flushed to the new one.
func TestFailoverBetweenRelays(t *testing.T) {
	dead := "ws://" + testkit.RefusedAddr(t) + "/v1/ws"
	r1, r2 := relaytest.New(t), relaytest.New(t)
	b := start(t, r2.URL(), "B", "")
	a := startURLs(t, []string{dead, r1.URL(), r2.URL()}, "A", "")
	waitFor(t, "A on the second URL", func() bool {
		st := a.l.Status()
		return st.State == StateConnected && st.URL == r1.URL()
	})
	if st := a.l.Status(); len(st.URLs) != 3 || st.Reconnects != 0 {
		t.Fatalf("status after the first connection: %+v", st)
	}

	r1.SetDown(true)
	waitFor(t, "A moved to the third URL", func() bool {
		st := a.l.Status()
		return st.State == StateConnected && st.URL == r2.URL()
	})
	res := a.l.Send(context.Background(), protocol.Send{To: protocol.Recipients{"B"}, Body: "after failover"})
	if res.Err != nil || res.Accepted == nil || res.Accepted.Recipients[0].Status != protocol.StatusDelivered {
		t.Fatalf("send after failover: %+v", res)
	}
	waitFor(t, "B got it", func() bool { return len(b.bodies()) == 1 })
	if st := a.l.Status(); st.Reconnects != 1 {
		t.Fatalf("reconnects %d, want 1", st.Reconnects)
	}
}

// With every relay of the list down, sends wait in the outbox and go to
// whichever relay comes back first.
func TestFailoverAllDownThenOneBack(t *testing.T) {
	r1, r2 := relaytest.New(t), relaytest.New(t)
	b := start(t, r2.URL(), "B", "")
	waitFor(t, "B connected", func() bool { return b.l.Status().State == StateConnected })
	r1.SetDown(true)
	r2.SetDown(true)
	a := startURLs(t, []string{r1.URL(), r2.URL()}, "A", "")
	if res := a.l.Send(context.Background(), protocol.Send{To: protocol.Recipients{"B"}, Body: "queued"}); !res.Queued {
		t.Fatalf("send with every relay down: %+v", res)
	}
	r2.SetDown(false)
	waitFor(t, "A on the second relay, B has the queued send", func() bool {
		return a.l.Status().URL == r2.URL() && len(b.bodies()) == 1 && a.l.Status().Outbox == 0
	})
}

func FuzzParseURLs(f *testing.F) {
	for _, s := range []string{"ws://127.0.0.1:1,ws://127.0.0.1:2", ",,", "h:1, wss://[::1]:443/x", "ws://a,ftp://b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		us, err := ParseURLs([]string{s})
		if err != nil {
			return
		}
		if len(us) == 0 {
			t.Fatalf("ParseURLs(%q) = no URL and no error", s)
		}
		again, err := ParseURLs([]string{strings.Join(us, ",")})
		if err != nil || strings.Join(again, ",") != strings.Join(us, ",") {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", s, us, again, err)
		}
	})
}

// A send the relay could not store (store_unavailable: a cluster electing
// a new stream leader after a node died) is not handed back as an error:
// it is queued and retried with its ref until the relay stores it, and the
// recipient has it once.
func TestStoreUnavailableSendRetried(t *testing.T) {
	r := relaytest.New(t)
	b := start(t, r.URL(), "B", "")
	a := start(t, r.URL(), "A", "")
	waitFor(t, "both connected", func() bool {
		return a.l.Status().State == StateConnected && b.l.Status().State == StateConnected
	})
	r.RefuseSends(3)
	res := a.l.Send(context.Background(), protocol.Send{To: protocol.Recipients{"B"}, Body: "stored at the fourth try"})
	if res.Err != nil || (res.Accepted == nil && !strings.Contains(res.Reason, "store_unavailable")) {
		t.Fatalf("send refused with store_unavailable: %+v", res)
	}
	waitFor(t, "B has it, the outbox is empty", func() bool { return len(b.bodies()) == 1 && a.l.Status().Outbox == 0 })
	if n := r.Delivered("B", "stored at the fourth try"); n != 1 {
		t.Fatalf("relay holds %d copies, want 1", n)
	}
}
