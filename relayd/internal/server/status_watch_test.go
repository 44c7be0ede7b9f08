package server

import (
	"slices"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/auth"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
)

// A status line is shown to peers: in presence at once, in peers and in
// welcome, and it comes back with hello after a reconnect.
func TestStatusVisibleToPeers(t *testing.T) {
	r := startRelay(t)
	coord, _ := r.connect("COORD", 0)
	codex, _ := r.connect("CODEX", 0)
	expect[*protocol.Presence](coord) // CODEX joined

	codex.send(&protocol.Status{Ref: "s1", Status: "auth refactor in repo app"})
	if got := expect[*protocol.Status](codex); got.Ref != "s1" || got.Status != "auth refactor in repo app" {
		t.Fatalf("status echo = %+v", got)
	}
	p := expect[*protocol.Presence](coord)
	if p.Event != protocol.PresenceStatus || p.Peer.ID != "CODEX" || p.Peer.Status != "auth refactor in repo app" {
		t.Fatalf("presence = %+v, want CODEX's status", p)
	}
	coord.send(&protocol.Peers{Ref: "p"})
	peers := expect[*protocol.Peers](coord)
	if st := peerStatus(peers.Peers, "CODEX"); st != "auth refactor in repo app" {
		t.Fatalf("peers show CODEX status %q", st)
	}

	// A reconnect repeats it in hello.
	codex.ws.CloseNow()
	if p := expect[*protocol.Presence](coord); p.Event != protocol.PresenceLeft {
		t.Fatalf("presence = %+v, want left", p)
	}
	c2 := r.dialRaw("/v1/ws", nil)
	c2.send(&protocol.Hello{Proto: 1, ClientID: "CODEX", Status: "auth refactor: tests"})
	expect[*protocol.Welcome](c2)
	if p := expect[*protocol.Presence](coord); p.Event != protocol.PresenceJoined || p.Peer.Status != "auth refactor: tests" {
		t.Fatalf("presence = %+v, want joined with the hello's status", p)
	}
	// Cleared with an empty status.
	c2.send(&protocol.Status{Ref: "s2"})
	expect[*protocol.Status](c2)
	if p := expect[*protocol.Presence](coord); p.Peer.Status != "" {
		t.Fatalf("presence after clearing = %+v", p)
	}
}

func peerStatus(ps []protocol.Peer, id string) string {
	for _, p := range ps {
		if p.ID == id {
			return p.Status
		}
	}
	return "(not online)"
}

// A watcher learns that mail exists for an id, never what it says: at once
// for mail that waits, then for each new message, online or not.
func TestWatchMail(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind)
		coord, _ := r.connect("COORD", 0)
		codex, _ := r.connect("CODEX", 0)
		codex.ws.CloseNow() // CODEX is known, and offline once the relay notices
		waitFor(t, "CODEX to be offline", func() bool {
			coord.send(&protocol.Peers{Ref: "p"})
			return !slices.ContainsFunc(expect[*protocol.Peers](coord).Peers, func(p protocol.Peer) bool { return p.ID == "CODEX" })
		})
		coord.send(&protocol.Send{Ref: "1", To: protocol.Recipients{"CODEX"}, Body: "secret task", Thread: "t1", QueueIfUnknown: true})
		for {
			if _, ok := coord.next().(*protocol.Accepted); ok {
				break
			}
		}

		w := r.dialRaw("/v1/ws", nil)
		w.send(&protocol.Hello{Proto: 1, ClientID: "watch-CODEX", Quiet: true, NoTakeover: true})
		expect[*protocol.Welcome](w)
		w.send(&protocol.Watch{Ref: "w", IDs: []string{"CODEX"}})
		// The waiting mail is announced (it may come before or after the echo).
		var echo *protocol.Watch
		var first *protocol.Mail
		for echo == nil || first == nil {
			switch f := w.next().(type) {
			case *protocol.Watch:
				echo = f
			case *protocol.Mail:
				first = f
			default:
				t.Fatalf("watcher got %T %+v", f, f)
			}
		}
		if echo.Ref != "w" || len(echo.IDs) != 1 || first.For != "CODEX" || first.Count != 1 || first.Seq == 0 {
			t.Fatalf("echo %+v, mail %+v", echo, first)
		}
		coord.send(&protocol.Send{Ref: "2", To: protocol.Recipients{"CODEX"}, Body: "another secret", Thread: "t1"})
		m := expect[*protocol.Mail](w)
		if m.For != "CODEX" || m.Count != 2 || m.Seq <= first.Seq || m.Online {
			t.Fatalf("mail = %+v, want count 2 and a newer seq", m)
		}
		// Mail to others is not announced; the watcher is not a peer to others' presence.
		coord.send(&protocol.Send{Ref: "3", To: protocol.Recipients{"watch-CODEX"}, Body: "x"})
		if f := w.next(); f.Type() != protocol.TypeMessage {
			t.Fatalf("watcher got %T %+v, want only its own message", f, f)
		}
		// Mail for an id that is online says so.
		r.connect("CODEX", 0)
		coord.send(&protocol.Send{Ref: "4", To: protocol.Recipients{"CODEX"}, Body: "you are online"})
		if m := expect[*protocol.Mail](w); !m.Online || m.For != "CODEX" {
			t.Fatalf("mail = %+v, want online", m)
		}
	})
}

// With per-identity tokens, a connection may watch only ids its token may
// claim.
func TestWatchNeedsClaim(t *testing.T) {
	tok, _ := auth.NewToken()
	toks, err := auth.ParseTokens(strings.NewReader(auth.Line(tok, []string{"watch-*", "CODEX"}) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, func(s *Server, _ *hub.Options) { s.Token = "shared-secret"; s.Tokens = toks })
	w := r.dialRaw("/v1/ws", bearer(tok))
	w.send(&protocol.Hello{Proto: 1, ClientID: "watch-1", Quiet: true})
	expect[*protocol.Welcome](w)
	w.send(&protocol.Watch{Ref: "w1", IDs: []string{"CC-1"}})
	if e := expect[*protocol.ErrorFrame](w); e.Code != protocol.CodeForbidden || e.Ref != "w1" || !strings.Contains(e.Message, "CC-1") {
		t.Fatalf("error = %+v", e)
	}
	w.send(&protocol.Watch{Ref: "w2", IDs: []string{"CODEX"}})
	if got := expect[*protocol.Watch](w); got.Ref != "w2" {
		t.Fatalf("watch = %+v", got)
	}
}

// A thread's history: only that thread, oldest first.
func TestHistoryThread(t *testing.T) {
	r := startRelay(t)
	a, _ := r.connect("CC-1", 0)
	b, _ := r.connect("CC-2", 0)
	for i, s := range []struct{ body, thread string }{{"task", "auth"}, {"noise", ""}, {"other", "docs"}, {"more", "auth"}} {
		a.send(&protocol.Send{Ref: string(rune('a' + i)), To: protocol.Recipients{"CC-2"}, Body: s.body, Thread: s.thread})
		expect[*protocol.Accepted](a)
		expect[*protocol.Message](b)
	}
	b.send(&protocol.History{Ref: "h", Thread: "auth"})
	h := expect[*protocol.History](b)
	if h.Thread != "auth" || len(h.Messages) != 2 || h.Messages[0].Body != "task" || h.Messages[1].Body != "more" {
		t.Fatalf("history = %+v", h)
	}
}
