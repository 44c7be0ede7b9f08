package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/auth"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
)

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// A leaked token of CC-2 cannot pose as CC-1; the shared token may claim
// any id; the older protocol's ?token= obeys the same rule.
func TestPerIdentityTokens(t *testing.T) {
	cc2, _ := auth.NewToken()
	bots, _ := auth.NewToken()
	toks, err := auth.ParseTokens(strings.NewReader(auth.Line(cc2, []string{"CC-2"}) + "\n" + auth.Line(bots, []string{"BOT-*"}) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, func(s *Server, _ *hub.Options) { s.Token = "shared-secret"; s.Tokens = toks })

	refused := func(t *testing.T, c *client, id string) {
		t.Helper()
		c.send(&protocol.Hello{Proto: 1, ClientID: id})
		e := expect[*protocol.ErrorFrame](c)
		if e.Code != protocol.CodeForbidden || !strings.Contains(e.Message, "may claim only CC-2") || !strings.Contains(e.Message, "tokens-file line 1") || strings.Contains(e.Message, cc2) {
			t.Fatalf("error = %+v", e)
		}
		if code, reason := c.closeStatus(); code != protocol.CloseForbiddenID || !strings.Contains(reason, id) {
			t.Fatalf("close %d %q, want %d naming %s", code, reason, protocol.CloseForbiddenID, id)
		}
		if protocol.ShouldReconnect(protocol.CloseForbiddenID) {
			t.Fatal("clients would retry a forbidden id forever")
		}
	}
	t.Run("own id", func(t *testing.T) {
		c := r.dialRaw("/v1/ws", bearer(cc2))
		c.send(&protocol.Hello{Proto: 1, ClientID: "CC-2"})
		expect[*protocol.Welcome](c)
	})
	t.Run("other id refused", func(t *testing.T) {
		refused(t, r.dialRaw("/v1/ws", bearer(cc2)), "CC-1")
	})
	t.Run("glob", func(t *testing.T) {
		c := r.dialRaw("/v1/ws", bearer(bots))
		c.send(&protocol.Hello{Proto: 1, ClientID: "BOT-build"})
		expect[*protocol.Welcome](c)
	})
	t.Run("shared token claims any id", func(t *testing.T) {
		c := r.dialRaw("/v1/ws", bearer("shared-secret"))
		c.send(&protocol.Hello{Proto: 1, ClientID: "CC-1"})
		expect[*protocol.Welcome](c)
	})
	t.Run("unknown token is 401", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, resp, err := websocket.Dial(ctx, r.url+"/v1/ws", &websocket.DialOptions{HTTPHeader: bearer("made-up")})
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("err=%v resp=%v, want 401", err, resp)
		}
	})
	t.Run("older protocol", func(t *testing.T) {
		c := r.dialRaw("/?token="+cc2, nil)
		lc := &legacyClient{c}
		lc.writeJSON(map[string]any{"type": "register", "clientId": "CC-1"})
		if m := lc.nextJSON(); m["type"] != "error" || !strings.Contains(m["message"].(string), "may claim only CC-2") {
			t.Fatalf("legacy got %v", m)
		}
		if code, _ := c.closeStatus(); code != protocol.CloseForbiddenID {
			t.Fatalf("legacy close %d", code)
		}
		r.connectLegacy("CC-2", "?token="+cc2)
	})
}

// clock is a hub clock the test can move forward; it follows real time so
// the keepalive, which compares with the real clock, is not disturbed.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

func TestClientRateLimit(t *testing.T) {
	var clk clock
	r := startRelay(t, func(_ *Server, o *hub.Options) {
		o.Now = clk.Now
		o.Limits.Client = ratelimit.Rate{N: 3, Per: time.Minute}
	})
	a, _ := r.connect("CC-1", 0)
	b, _ := r.connect("CC-2", 0)
	for i := range 3 {
		a.send(&protocol.Send{Ref: fmt.Sprint("ok", i), To: protocol.Recipients{"CC-2"}, Body: "fine"})
		expect[*protocol.Accepted](a)
		if m := expect[*protocol.Message](b); m.Body != "fine" {
			t.Fatalf("message %d = %+v", i, m)
		}
		b.send(&protocol.Ack{Upto: uint64(i + 1)}) // acks are free
	}
	a.send(&protocol.Send{Ref: "over", To: protocol.Recipients{"CC-2"}, Body: "too many"})
	e := expect[*protocol.ErrorFrame](a)
	if e.Code != protocol.CodeRateLimited || e.Ref != "over" || e.RetryAfterMS < 19000 || e.RetryAfterMS > 21000 ||
		!strings.Contains(e.Message, "--client-limit") || !strings.Contains(e.Message, "not carried out") {
		t.Fatalf("error = %+v, want rate_limited for ~20 s", e)
	}
	a.send(&protocol.Peers{Ref: "p"}) // every request counts, not only sends
	if e := expect[*protocol.ErrorFrame](a); e.Code != protocol.CodeRateLimited || e.Ref != "p" {
		t.Fatalf("peers over the limit: %+v", e)
	}
	clk.Advance(time.Duration(e.RetryAfterMS) * time.Millisecond)
	a.send(&protocol.Send{Ref: "later", To: protocol.Recipients{"CC-2"}, Body: "after the wait"})
	if acc := expect[*protocol.Accepted](a); statuses(acc)["CC-2"] != protocol.StatusDelivered {
		t.Fatalf("accepted = %+v", acc)
	}
	// The refused send was not delivered: the next message CC-2 sees is this one.
	if m := expect[*protocol.Message](b); m.Body != "after the wait" {
		t.Fatalf("CC-2 got %q, want the send after the wait", m.Body)
	}
}

// Two agents answering each other forever are held once the pair's limit
// is reached; other pairs, and the other direction, are not.
func TestRunawayPairAndGlobalLimits(t *testing.T) {
	var clk clock
	r := startRelay(t, func(_ *Server, o *hub.Options) {
		o.Now = clk.Now
		o.Limits.Pair = ratelimit.Rate{N: 2, Per: time.Hour}
		o.Limits.Global = ratelimit.Rate{N: 6, Per: time.Hour}
	})
	a, _ := r.connect("CC-1", 0)
	b, _ := r.connect("CC-2", 0)
	c, _ := r.connect("CODEX", 0)
	send := func(from *client, ref string, to ...string) protocol.Frame {
		from.send(&protocol.Send{Ref: ref, To: protocol.Recipients(to), Body: ref})
		for {
			switch f := from.next().(type) {
			case *protocol.Accepted, *protocol.ErrorFrame:
				return f
			}
		}
	}
	for _, ref := range []string{"1", "2"} {
		if _, ok := send(a, ref, "CC-2").(*protocol.Accepted); !ok {
			t.Fatalf("send %s refused", ref)
		}
		expect[*protocol.Message](b)
	}
	e, ok := send(a, "3", "CC-2").(*protocol.ErrorFrame)
	if !ok || e.Code != protocol.CodeRateLimited || !strings.Contains(e.Message, "CC-1 → CC-2") || !strings.Contains(e.Message, "--pair-limit") ||
		!strings.Contains(e.Message, "loop") || e.RetryAfterMS < 29*60*1000 || e.Ref != "3" {
		t.Fatalf("third send: %+v, want rate_limited naming the pair, ~30 min", e)
	}
	// A broadcast that includes the held pair is held whole: CODEX gets nothing either.
	if e, ok := send(a, "4", "*").(*protocol.ErrorFrame); !ok || e.Code != protocol.CodeRateLimited {
		t.Fatalf("broadcast: %+v", e)
	}
	// Other pairs and the other direction go on.
	if _, ok := send(a, "5", "CODEX").(*protocol.Accepted); !ok {
		t.Fatal("CC-1 → CODEX held")
	}
	if m := expect[*protocol.Message](c); m.Body != "5" {
		t.Fatalf("CODEX got %q first, want 5 (the held broadcast must not arrive)", m.Body)
	}
	if _, ok := send(b, "6", "CC-1").(*protocol.Accepted); !ok {
		t.Fatal("CC-2 → CC-1 held")
	}
	expect[*protocol.Message](a)
	// Global: 6 an hour; 4 used (1, 2, 5, 6). A broadcast to two needs 2, a third message fails.
	if _, ok := send(c, "7", "CC-1", "CC-2").(*protocol.Accepted); !ok {
		t.Fatal("global limit hit early")
	}
	expect[*protocol.Message](a)
	expect[*protocol.Message](b)
	if e, ok := send(c, "8", "CC-2").(*protocol.ErrorFrame); !ok || !strings.Contains(e.Message, "--global-limit") {
		t.Fatalf("over the global limit: %+v", e)
	}
	clk.Advance(30 * time.Minute)
	if _, ok := send(a, "9", "CC-2").(*protocol.Accepted); !ok {
		t.Fatal("still held after the retry delay")
	}
	if m := expect[*protocol.Message](b); m.Body != "9" {
		t.Fatalf("CC-2 got %q, want 9", m.Body)
	}
	if n := r.srv.Hub.Stats().RateLimited.Load(); n != 3 {
		t.Fatalf("rate_limited counted %d, want 3", n)
	}
}

func TestConnectionLimits(t *testing.T) {
	dial := func(r *relay) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, resp, err := websocket.Dial(ctx, r.url+"/v1/ws", nil)
		if ws != nil {
			t.Cleanup(func() { ws.CloseNow() })
		}
		return ws, resp, err
	}
	body := func(resp *http.Response) string {
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	t.Run("total", func(t *testing.T) {
		r := startRelay(t, func(s *Server, _ *hub.Options) { s.MaxConns = 2 })
		a, _ := r.connect("CC-1", 0)
		r.connect("CC-2", 0)
		_, resp, err := dial(r)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("third connection: err=%v resp=%v, want 503", err, resp)
		}
		if b := body(resp); !strings.Contains(b, "--max-conns") || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("503 body %q", b)
		}
		a.ws.Close(websocket.StatusNormalClosure, "")
		waitFor(t, "a slot to free up", func() bool {
			ws, _, err := dial(r)
			if err == nil {
				ws.CloseNow()
			}
			return err == nil
		})
	})
	t.Run("per address", func(t *testing.T) {
		r := startRelay(t, func(s *Server, _ *hub.Options) { s.MaxConnsPerAddr = 1 })
		r.connect("CC-1", 0)
		_, resp, err := dial(r)
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body(resp), "--max-conns-per-addr") {
			t.Fatalf("second connection from 127.0.0.1: err=%v resp=%v, want 429", err, resp)
		}
	})
}

// The idle timeout is about application frames: a client that answers the
// relay's pings but says nothing is closed; one that talks stays.
func TestIdleTimeout(t *testing.T) {
	r := startRelay(t, func(s *Server, _ *hub.Options) {
		// Pongs may take a while on a loaded machine: the keepalive
		// (two intervals without one) must not beat the idle timeout.
		s.PingInterval = 200 * time.Millisecond
		s.IdleTimeout = time.Second
	})
	idle, _ := r.connect("IDLE", 0)
	active, _ := r.connect("ACTIVE", 0)
	closed := make(chan string, 1)
	go func() {
		// Reading answers pings, so only the idle timeout can close it.
		for {
			_, _, err := idle.ws.Read(context.Background())
			if err != nil {
				var ce websocket.CloseError
				errors.As(err, &ce)
				closed <- ce.Reason
				return
			}
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case reason := <-closed:
			if !strings.Contains(reason, "idle") || !strings.Contains(reason, "--idle-timeout") {
				t.Fatalf("closed with %q", reason)
			}
			active.send(&protocol.Peers{Ref: "still here"})
			if p := expect[*protocol.Peers](active); len(p.Peers) != 1 || p.Peers[0].ID != "ACTIVE" {
				t.Fatalf("peers = %+v", p.Peers)
			}
			return
		case <-tick.C:
			active.send(&protocol.Peers{Ref: "p"})
			expect[*protocol.Peers](active)
		case <-deadline:
			t.Fatal("idle client never closed")
		}
	}
}
