package server

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
)

func statuses(a *protocol.Accepted) map[string]string {
	m := map[string]string{}
	for _, o := range a.Recipients {
		m[o.ID] = o.Status
	}
	return m
}

func TestRouting(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind)
		a, _ := r.connect("CC-1", 0)
		b, _ := r.connect("CC-2", 0)
		c, w := r.connect("CODEX", 0)
		if got := len(w.Peers); got != 3 {
			t.Fatalf("welcome lists %d peers, want 3", got)
		}

		t.Run("direct", func(t *testing.T) {
			a.send(&protocol.Send{Ref: "r1", To: protocol.Recipients{"CC-2"}, Body: "the bug is in auth.js line 42", Thread: "auth"})
			acc := expect[*protocol.Accepted](a)
			if acc.Ref != "r1" || acc.ID == "" || !reflect.DeepEqual(statuses(acc), map[string]string{"CC-2": "delivered"}) {
				t.Fatalf("accepted = %+v", acc)
			}
			m := expect[*protocol.Message](b)
			if m.From != "CC-1" || m.Body != "the bug is in auth.js line 42" || m.ID != acc.ID || m.Thread != "auth" || m.Seq == 0 {
				t.Fatalf("message = %+v", m)
			}
		})
		t.Run("list", func(t *testing.T) {
			a.send(&protocol.Send{Ref: "r2", To: protocol.Recipients{"CC-2", "CODEX", "CC-2"}, Body: "both"})
			acc := expect[*protocol.Accepted](a)
			if !reflect.DeepEqual(statuses(acc), map[string]string{"CC-2": "delivered", "CODEX": "delivered"}) || len(acc.Recipients) != 2 {
				t.Fatalf("accepted = %+v", acc)
			}
			for _, cl := range []*client{b, c} {
				if m := expect[*protocol.Message](cl); m.Body != "both" {
					t.Fatalf("%s got %+v", cl.id, m)
				}
			}
		})
		t.Run("broadcast skips sender", func(t *testing.T) {
			b.send(&protocol.Send{Ref: "r3", To: protocol.Recipients{"*"}, Body: "hello all"})
			acc := expect[*protocol.Accepted](b)
			if !reflect.DeepEqual(statuses(acc), map[string]string{"CC-1": "delivered", "CODEX": "delivered"}) {
				t.Fatalf("accepted = %+v", acc)
			}
			for _, cl := range []*client{a, c} {
				if m := expect[*protocol.Message](cl); m.Body != "hello all" || m.From != "CC-2" || !reflect.DeepEqual(m.To, []string{"*"}) {
					t.Fatalf("%s got %+v", cl.id, m)
				}
			}
			// The sender's next frame is the answer to its next request, not its own broadcast.
			b.send(&protocol.Peers{Ref: "p"})
			if p := expect[*protocol.Peers](b); len(p.Peers) != 3 {
				t.Fatalf("peers = %+v", p)
			}
		})
		t.Run("unknown", func(t *testing.T) {
			a.send(&protocol.Send{Ref: "r4", To: protocol.Recipients{"NOBODY", "CC-2"}, Body: "x"})
			acc := expect[*protocol.Accepted](a)
			if !reflect.DeepEqual(statuses(acc), map[string]string{"NOBODY": "unknown", "CC-2": "delivered"}) {
				t.Fatalf("accepted = %+v", acc)
			}
			expect[*protocol.Message](b)
		})
		t.Run("from cannot be forged", func(t *testing.T) {
			c.writeText(`{"type":"send","ref":"f","to":"CC-2","body":"hi","from":"CC-1"}`)
			expect[*protocol.Accepted](c)
			if m := expect[*protocol.Message](b); m.From != "CODEX" {
				t.Fatalf("from = %q, want CODEX", m.From)
			}
		})
		t.Run("seq strictly increasing", func(t *testing.T) {
			var last uint64
			for i := range 20 {
				a.send(&protocol.Send{Ref: "s", To: protocol.Recipients{"CC-2"}, Body: strings.Repeat("x", i+1)})
			}
			for range 20 {
				m := expect[*protocol.Message](b)
				if m.Seq <= last {
					t.Fatalf("seq %d after %d", m.Seq, last)
				}
				last = m.Seq
			}
		})
	})
}

func TestPeersAndSessions(t *testing.T) {
	r := startRelay(t)
	a, _ := r.connect("CC-1", 0)
	b, _ := r.connect("CC-2", 0)
	a.send(&protocol.Peers{Ref: "p1"})
	p := expect[*protocol.Peers](a)
	if p.Ref != "p1" || len(p.Peers) != 2 || p.Peers[0].ID != "CC-1" || p.Peers[1].ID != "CC-2" {
		t.Fatalf("peers = %+v", p)
	}
	if p.Peers[1].Host != "test-host" || p.Peers[1].Agent != "test" || p.Peers[1].ConnectedSince.IsZero() || p.Peers[1].LastSeen.IsZero() {
		t.Fatalf("peer info incomplete: %+v", p.Peers[1])
	}
	b.ws.Close(websocket.StatusNormalClosure, "bye")
	pr := expect[*protocol.Presence](a)
	if pr.Event != protocol.PresenceLeft || pr.Peer.ID != "CC-2" {
		t.Fatalf("presence = %+v", pr)
	}
	a.send(&protocol.Sessions{Ref: "s1"})
	s := expect[*protocol.Sessions](a)
	if len(s.Sessions) != 2 || !s.Sessions[0].Online || s.Sessions[1].Online || s.Sessions[1].ID != "CC-2" {
		t.Fatalf("sessions = %+v", s)
	}
}

func TestPresence(t *testing.T) {
	r := startRelay(t)
	a, _ := r.connect("CC-1", 0)
	b, _ := r.connect("CC-2", 0)
	pr := a.next().(*protocol.Presence)
	if pr.Event != protocol.PresenceJoined || pr.Peer.ID != "CC-2" || pr.Peer.Host != "test-host" {
		t.Fatalf("presence = %+v", pr)
	}
	b.ws.Close(websocket.StatusNormalClosure, "")
	pr = a.next().(*protocol.Presence)
	if pr.Event != protocol.PresenceLeft || pr.Peer.ID != "CC-2" {
		t.Fatalf("presence = %+v", pr)
	}
}

func TestQueuedForOfflinePeerAndResume(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind)
		a, _ := r.connect("CC-1", 0)
		b, _ := r.connect("CC-2", 0)
		a.send(&protocol.Send{Ref: "1", To: protocol.Recipients{"CC-2"}, Body: "one"})
		expect[*protocol.Accepted](a)
		m1 := expect[*protocol.Message](b)
		b.send(&protocol.Ack{Upto: m1.Seq})
		b.ws.Close(websocket.StatusNormalClosure, "")
		expect[*protocol.Presence](a)

		for _, body := range []string{"two", "three"} {
			a.send(&protocol.Send{Ref: body, To: protocol.Recipients{"CC-2"}, Body: body})
			if st := statuses(expect[*protocol.Accepted](a)); st["CC-2"] != protocol.StatusQueued {
				t.Fatalf("status = %v, want queued", st)
			}
		}
		b2, _ := r.connect("CC-2", 0)
		for _, want := range []string{"two", "three"} {
			if m := expect[*protocol.Message](b2); m.Body != want {
				t.Fatalf("after reconnect got %q, want %q", m.Body, want)
			}
		}
		// Not acked: a reconnect with resume_after of the first redelivers only the second.
		b2.ws.Close(websocket.StatusNormalClosure, "")
		b3, _ := r.connect("CC-2", m1.Seq+1)
		if m := expect[*protocol.Message](b3); m.Body != "three" {
			t.Fatalf("after resume got %q, want three", m.Body)
		}
	})
}

func TestQueueIfUnknown(t *testing.T) {
	r := startRelay(t)
	a, _ := r.connect("CC-1", 0)
	a.send(&protocol.Send{Ref: "1", To: protocol.Recipients{"LATER"}, Body: "for when you start", QueueIfUnknown: true})
	if st := statuses(expect[*protocol.Accepted](a)); st["LATER"] != protocol.StatusQueued {
		t.Fatalf("status = %v", st)
	}
	l, _ := r.connect("LATER", 0)
	if m := expect[*protocol.Message](l); m.Body != "for when you start" {
		t.Fatalf("got %+v", m)
	}
}

func TestMailboxFull(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind, func(_ *Server, o *hub.Options) { o.MaxQueue = 2 })
		b, _ := r.connect("CC-2", 0)
		b.ws.Close(websocket.StatusNormalClosure, "")
		a, _ := r.connect("CC-1", 0)
		waitFor(t, "CC-2 to go offline", func() bool {
			a.send(&protocol.Peers{Ref: "p"})
			return len(expect[*protocol.Peers](a).Peers) == 1
		})
		var got []string
		for i := range 3 {
			a.send(&protocol.Send{Ref: "x", To: protocol.Recipients{"CC-2"}, Body: string(rune('a' + i))})
			got = append(got, statuses(expect[*protocol.Accepted](a))["CC-2"])
		}
		if !reflect.DeepEqual(got, []string{"queued", "queued", "full"}) {
			t.Fatalf("statuses = %v", got)
		}
	})
}

func TestTakeover(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind)
		watcher, _ := r.connect("WATCH", 0)
		old, _ := r.connect("CC-1", 0)
		expect[*protocol.Presence](watcher)

		newer := r.dialRaw("/v1/ws", nil)
		newer.id = "CC-1"
		newer.send(&protocol.Hello{Proto: 1, ClientID: "CC-1", Host: "laptop", PID: 200})
		w := expect[*protocol.Welcome](newer)
		if w.Replaced == nil || w.Replaced.Host != "test-host" || w.Replaced.PID != 100 {
			t.Fatalf("welcome.replaced = %+v, want the old host and pid", w.Replaced)
		}
		code, reason := old.closeStatus()
		if code != protocol.CloseReplaced || !strings.Contains(reason, "laptop") {
			t.Fatalf("old connection closed with %d %q, want 4409 naming the new host", code, reason)
		}

		// The old connection's teardown must not remove the newer one.
		watcher.send(&protocol.Send{Ref: "m", To: protocol.Recipients{"CC-1"}, Body: "still there?"})
		if st := statuses(expect[*protocol.Accepted](watcher)); st["CC-1"] != protocol.StatusDelivered {
			t.Fatalf("status = %v, want delivered to the newer connection", st)
		}
		if m := expect[*protocol.Message](newer); m.Body != "still there?" {
			t.Fatalf("newer got %+v", m)
		}
		watcher.send(&protocol.Peers{Ref: "p"})
		p := expect[*protocol.Peers](watcher)
		if len(p.Peers) != 2 || p.Peers[0].ID != "CC-1" || p.Peers[0].PID != 200 {
			t.Fatalf("peers = %+v", p.Peers)
		}
		if protocol.ShouldReconnect(int(code)) {
			t.Fatal("4409 must tell the client not to reconnect")
		}
	})
}

func TestKeepaliveDropsSilentPeer(t *testing.T) {
	// Wide enough that CC-1's pongs arrive in time on a loaded machine.
	r := startRelay(t, func(s *Server, _ *hub.Options) { s.PingInterval = 250 * time.Millisecond })
	a, _ := r.connect("CC-1", 0)
	// A client that never reads never answers pings.
	silent, _ := r.connect("SILENT", 0)
	_ = silent
	for {
		pr := expect[*protocol.Presence](a)
		if pr.Event == protocol.PresenceLeft && pr.Peer.ID == "SILENT" {
			if !strings.Contains(pr.Reason, "no answer to pings") {
				t.Fatalf("left reason = %q", pr.Reason)
			}
			break
		}
	}
	// A's own reads answer pings: it is still online.
	a.send(&protocol.Peers{Ref: "p"})
	if p := expect[*protocol.Peers](a); len(p.Peers) != 1 || p.Peers[0].ID != "CC-1" {
		t.Fatalf("peers = %+v", p.Peers)
	}
}

func TestHelloTimeout(t *testing.T) {
	r := startRelay(t, func(s *Server, _ *hub.Options) { s.HelloTimeout = 100 * time.Millisecond })
	c := r.dialRaw("/v1/ws", nil)
	if code, _ := c.closeStatus(); code != protocol.CloseHelloTimeout {
		t.Fatalf("close code %d, want %d", code, protocol.CloseHelloTimeout)
	}
}

func TestGracefulShutdown(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind)
		a, _ := r.connect("CC-1", 0)
		b, _ := r.connect("CC-2", 0)
		// The clients read while the relay shuts down, as real ones do: the
		// close handshake needs their answer, or it waits out CloseGrace.
		codes := make(chan websocket.StatusCode, 2)
		for _, c := range []*client{a, b} {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				defer cancel()
				for {
					if _, _, err := c.ws.Read(ctx); err != nil {
						codes <- websocket.CloseStatus(err)
						return
					}
				}
			}()
		}
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if err := r.srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if code := <-codes; code != websocket.StatusGoingAway {
				t.Fatalf("a client closed with %d, want 1001", code)
			}
		}
	})
}

func TestBadInput(t *testing.T) {
	r := startRelay(t, func(s *Server, _ *hub.Options) {
		s.Limits = protocol.Limits{MaxFrameBytes: 64 << 10, MaxBodyBytes: 1 << 10}
	})
	peer, _ := r.connect("CC-2", 0)

	t.Run("before hello", func(t *testing.T) {
		c := r.dialRaw("/v1/ws", nil)
		c.send(&protocol.Send{Ref: "early", To: protocol.Recipients{"CC-2"}, Body: "x"})
		e := expect[*protocol.ErrorFrame](c)
		if e.Code != protocol.CodeHelloRequired || e.Ref != "early" {
			t.Fatalf("error = %+v", e)
		}
		c.writeText("not json")
		if e := expect[*protocol.ErrorFrame](c); e.Code != protocol.CodeBadJSON {
			t.Fatalf("error = %+v", e)
		}
		c.send(&protocol.Hello{Proto: 1, ClientID: "LATE"})
		expect[*protocol.Welcome](c)
	})

	a, _ := r.connect("CC-1", 0)
	cases := []struct {
		name string
		in   string
		code protocol.Code
	}{
		{"garbage", "{{{", protocol.CodeBadJSON},
		{"unknown type", `{"type":"teleport","ref":"t"}`, protocol.CodeUnknownType},
		{"missing to", `{"type":"send","ref":"m","body":"x"}`, protocol.CodeMissingField},
		{"missing body", `{"type":"send","ref":"m","to":"CC-2"}`, protocol.CodeMissingField},
		{"bad id", `{"type":"send","ref":"m","to":"CC\u00002","body":"x"}`, protocol.CodeBadID},
		{"body too big", `{"type":"send","ref":"m","to":"CC-2","body":"` + strings.Repeat("b", 2<<10) + `"}`, protocol.CodeTooLarge},
		{"second hello", `{"type":"hello","proto":1,"client_id":"OTHER"}`, protocol.CodeAlreadyHello},
		{"relay frame", `{"type":"welcome","client_id":"X"}`, protocol.CodeUnexpected},
		{"deep nesting", `{"type":"send","ref":"m","to":"CC-2","body":"x","extra":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, protocol.CodeBadJSON},
		{"huge number", `{"type":"ack","upto":1e999}`, protocol.CodeBadField},
		{"huge integer", `{"type":"ack","upto":99999999999999999999999}`, protocol.CodeBadField},
		{"negative seq", `{"type":"ack","upto":-1}`, protocol.CodeBadField},
		{"truncated frame", `{"type":"send","ref":"m","to":"CC-2","bo`, protocol.CodeBadJSON},
		{"invalid utf-8", "{\"type\":\"send\",\"ref\":\"m\",\"to\":\"CC-2\",\"body\":\"\xff\xfe\"}", protocol.CodeBadJSON},
		{"empty frame", ``, protocol.CodeBadJSON},
		{"json null", `null`, protocol.CodeBadJSON},
		{"json array", `[{"type":"send"}]`, protocol.CodeBadJSON},
		{"null byte in reply_to", `{"type":"send","ref":"m","to":"CC-2","body":"x","reply_to":"a\u0000b"}`, protocol.CodeBadID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a.writeText(tc.in)
			e := expect[*protocol.ErrorFrame](a)
			if e.Code != tc.code || e.Message == "" {
				t.Fatalf("error = %+v, want code %s", e, tc.code)
			}
		})
	}
	t.Run("binary frame", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a.ws.Write(ctx, websocket.MessageBinary, []byte{0, 1, 2})
		if e := expect[*protocol.ErrorFrame](a); !strings.Contains(e.Message, "binary") {
			t.Fatalf("error = %+v", e)
		}
	})
	t.Run("still usable", func(t *testing.T) {
		a.send(&protocol.Send{Ref: "ok", To: protocol.Recipients{"CC-2"}, Body: "after all that"})
		expect[*protocol.Accepted](a)
		if m := expect[*protocol.Message](peer); m.Body != "after all that" {
			t.Fatalf("peer got %+v", m)
		}
	})
	t.Run("frame over the limit closes 1009", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// The relay stops reading mid-frame, so the write itself may fail.
		a.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"send","ref":"big","to":"CC-2","body":"`+strings.Repeat("z", 100<<10)+`"}`))
		_, _, err := a.ws.Read(ctx)
		// The close frame (1009) can be overtaken by the TCP reset the
		// kernel sends for the unread rest of the frame; either way the
		// connection must be gone, not hanging.
		if code := websocket.CloseStatus(err); code != websocket.StatusMessageTooBig && !strings.Contains(fmt.Sprint(err), "reset") && !strings.Contains(fmt.Sprint(err), "EOF") {
			t.Fatalf("after an oversized frame: %v, want close 1009", err)
		}
		// The relay itself is fine.
		b, _ := r.connect("CC-3", 0)
		b.send(&protocol.Peers{Ref: "p"})
		expect[*protocol.Peers](b)
	})
	t.Run("bad hello id", func(t *testing.T) {
		c := r.dialRaw("/v1/ws", nil)
		for _, id := range []string{`../../etc`, `CC\u00001`, `CC-1\n`, `all`, strings.Repeat("x", 65)} {
			c.writeText(`{"type":"hello","proto":1,"client_id":"` + id + `"}`)
			if e := expect[*protocol.ErrorFrame](c); e.Code != protocol.CodeBadID || e.Message == "" {
				t.Fatalf("hello as %q: error = %+v", id, e)
			}
		}
		// The connection is still waiting for a good hello.
		c.send(&protocol.Hello{Proto: 1, ClientID: "GOOD-AFTER-BAD"})
		expect[*protocol.Welcome](c)
	})
	t.Run("unsupported proto", func(t *testing.T) {
		c := r.dialRaw("/v1/ws", nil)
		c.writeText(`{"type":"hello","proto":2,"client_id":"FUTURE"}`)
		if e := expect[*protocol.ErrorFrame](c); e.Code != protocol.CodeUnsupportedProto {
			t.Fatalf("error = %+v", e)
		}
		if code, _ := c.closeStatus(); code != protocol.CloseBadHello {
			t.Fatalf("close %d", code)
		}
	})
}

// A client that stops reading is closed as a slow consumer and loses
// nothing: the messages wait in its mailbox for the next connection.
func TestSlowConsumerLosesNothing(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		// Short enough that SLOW is dropped soon, long enough that the reader of
		// the backlog below (256 KiB frames decoded under -race) keeps up on a
		// loaded machine: at 1 s it was dropped as slow too when the CPUs were busy.
		r := startRelayOn(t, kind, func(s *Server, _ *hub.Options) { s.WriteTimeout = 3 * time.Second })
		a, _ := r.connect("CC-1", 0)
		slow, _ := r.connect("SLOW", 0)
		_ = slow // never reads again
		body := strings.Repeat("s", 256<<10)
		const n = 64 // 16 MiB: more than socket buffers hold
		for i := range n {
			a.send(&protocol.Send{Ref: "s", To: protocol.Recipients{"SLOW"}, Body: body[:len(body)-i]})
			expect[*protocol.Accepted](a)
		}
		// Wait for the relay to give up on it.
		waitFor(t, "SLOW to be dropped", func() bool {
			a.send(&protocol.Peers{Ref: "p"})
			return len(expect[*protocol.Peers](a).Peers) == 1
		})
		again, _ := r.connect("SLOW", 0)
		for i := range n {
			m := expect[*protocol.Message](again)
			if len(m.Body) != len(body)-i {
				t.Fatalf("message %d has %d bytes, want %d", i, len(m.Body), len(body)-i)
			}
			again.send(&protocol.Ack{Upto: m.Seq})
		}
	})
}

func TestHistoryAndClear(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind)
		a, _ := r.connect("CC-1", 0)
		b, _ := r.connect("CC-2", 0)
		c, _ := r.connect("CC-3", 0)
		a.send(&protocol.Send{Ref: "1", To: protocol.Recipients{"CC-2"}, Body: "a to b"})
		expect[*protocol.Accepted](a)
		expect[*protocol.Message](b)
		b.send(&protocol.Send{Ref: "2", To: protocol.Recipients{"CC-3"}, Body: "b to c, private"})
		expect[*protocol.Accepted](b)
		expect[*protocol.Message](c)
		c.send(&protocol.Send{Ref: "3", To: protocol.Recipients{"*"}, Body: "c to all"})
		expect[*protocol.Accepted](c)
		expect[*protocol.Message](a)

		a.send(&protocol.History{Ref: "h"})
		h := expect[*protocol.History](a)
		var bodies []string
		for _, m := range h.Messages {
			bodies = append(bodies, m.Body)
		}
		if !reflect.DeepEqual(bodies, []string{"a to b", "c to all"}) {
			t.Fatalf("CC-1 history = %q; must hold its own sends and what it received, never b→c", bodies)
		}
		a.send(&protocol.History{Ref: "h2", Limit: 1})
		if h := expect[*protocol.History](a); len(h.Messages) != 1 || h.Messages[0].Body != "c to all" || !h.More {
			t.Fatalf("limited history = %+v", h)
		}
		a.send(&protocol.History{Ref: "h3", With: "CC-2"})
		if h := expect[*protocol.History](a); len(h.Messages) != 1 || h.Messages[0].Body != "a to b" {
			t.Fatalf("history with CC-2 = %+v", h)
		}

		// Everything CC-1 was sent is unread: a plain clear keeps it.
		a.send(&protocol.Clear{Ref: "c"})
		if cl := expect[*protocol.Cleared](a); cl.Cleared != 1 {
			t.Fatalf("cleared = %d, want 1 (its own send)", cl.Cleared)
		}
		a.send(&protocol.History{Ref: "h4"})
		if h := expect[*protocol.History](a); len(h.Messages) != 1 || h.Messages[0].Body != "c to all" {
			t.Fatalf("history after clear = %+v", h)
		}
	})
}

func TestAuth(t *testing.T) {
	r := startRelay(t, func(s *Server, _ *hub.Options) { s.Token = "s3cret-token" })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for name, hdr := range map[string]http.Header{
		"none":  nil,
		"wrong": {"Authorization": {"Bearer nope"}},
		"basic": {"Authorization": {"Basic s3cret-token"}},
	} {
		_, resp, err := websocket.Dial(ctx, r.url+"/v1/ws", &websocket.DialOptions{HTTPHeader: hdr})
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: err=%v resp=%v, want 401", name, err, resp)
		}
	}
	// The query token is for the older protocol only.
	if _, resp, err := websocket.Dial(ctx, r.url+"/v1/ws?token=s3cret-token", nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("v1 with ?token: err=%v, want 401", err)
	}
	ok := r.dialRaw("/v1/ws", http.Header{"Authorization": {"Bearer s3cret-token"}})
	ok.send(&protocol.Hello{Proto: 1, ClientID: "CC-1"})
	expect[*protocol.Welcome](ok)
	r.connectLegacy("OLD", "?token=s3cret-token")
}

func TestForeignOriginRefused(t *testing.T) {
	r := startRelay(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, r.url+"/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: err=%v resp=%v, want 403", err, resp)
	}
	_, resp, err = websocket.Dial(ctx, r.url+"/", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://localhost:3000"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin on /: err=%v, want 403", err)
	}
}

func TestHealthz(t *testing.T) {
	r := startRelay(t)
	r.connect("CC-1", 0)
	resp, err := http.Get(r.hts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h health
	if err := jsonDecode(resp, &h); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || h.Status != "ok" || h.Online != 1 || h.Version != "test" || h.Proto != 1 {
		t.Fatalf("healthz = %d %+v", resp.StatusCode, h)
	}
}

func TestNoTakeover(t *testing.T) {
	r := startRelay(t)
	agent, _ := r.connect("CC-1", 0)
	tool := r.dialRaw("/v1/ws", nil)
	tool.send(&protocol.Hello{Proto: 1, ClientID: "CC-1", NoTakeover: true})
	if e := expect[*protocol.ErrorFrame](tool); e.Code != protocol.CodeIDInUse {
		t.Fatalf("error = %+v", e)
	}
	if code, _ := tool.closeStatus(); code != protocol.CloseIDInUse || protocol.ShouldReconnect(int(code)) {
		t.Fatalf("close %d", code)
	}
	agent.send(&protocol.Peers{Ref: "p"})
	if p := expect[*protocol.Peers](agent); len(p.Peers) != 1 {
		t.Fatalf("the agent was disturbed: %+v", p)
	}
}

// A send retried with the same ref (its accepted was lost with the
// connection) is answered again and not delivered twice.
func TestRetriedSendDeliveredOnce(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind)
		b, _ := r.connect("CC-2", 0)
		a, _ := r.connect("CC-1", 0)
		a.send(&protocol.Send{Ref: "outbox-17", To: protocol.Recipients{"CC-2"}, Body: "once"})
		first := expect[*protocol.Accepted](a)
		a.ws.CloseNow()
		a2, _ := r.connect("CC-1", 0)
		a2.send(&protocol.Send{Ref: "outbox-17", To: protocol.Recipients{"CC-2"}, Body: "once"})
		if again := expect[*protocol.Accepted](a2); again.ID != first.ID {
			t.Fatalf("retry got id %s, want the original %s", again.ID, first.ID)
		}
		a2.send(&protocol.Send{Ref: "outbox-18", To: protocol.Recipients{"CC-2"}, Body: "next"})
		expect[*protocol.Accepted](a2)
		if m := expect[*protocol.Message](b); m.Body != "once" {
			t.Fatalf("got %+v", m)
		}
		if m := expect[*protocol.Message](b); m.Body != "next" {
			t.Fatalf("got %q, want next (the retry must not be delivered again)", m.Body)
		}
	})
}

func TestWelcomeBacklogAndResetMailbox(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind)
		b, _ := r.connect("CC-2", 0)
		b.ws.Close(websocket.StatusNormalClosure, "")
		a, _ := r.connect("CC-1", 0)
		waitFor(t, "CC-2 offline", func() bool {
			a.send(&protocol.Peers{Ref: "p"})
			return len(expect[*protocol.Peers](a).Peers) == 1
		})
		for _, body := range []string{"1", "2", "3"} {
			a.send(&protocol.Send{Ref: body, To: protocol.Recipients{"CC-2"}, Body: body})
			expect[*protocol.Accepted](a)
		}
		// A client that holds seq 500 of a mailbox that only reached 3 (the
		// relay's store was reset) must still get everything held.
		b2, w := r.connect("CC-2", 500)
		if w.Backlog != 3 {
			t.Fatalf("backlog = %d, want 3", w.Backlog)
		}
		for _, want := range []string{"1", "2", "3"} {
			if m := expect[*protocol.Message](b2); m.Body != want {
				t.Fatalf("got %q, want %q", m.Body, want)
			}
		}
	})
}
