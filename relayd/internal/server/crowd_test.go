package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
)

// A peers listing with 10 000 peers online works and fits a client's frame
// limit, and well-behaved peers lose nothing meanwhile. The crowd joins the
// hub directly with quiet hellos: 10 000 sockets would need some 30 000
// goroutines, past the race detector's limit of 8 128, while what is under
// test — the hub's listing, its encoding and its trip over a real socket —
// is the same. The hello flood below uses real sockets.
func TestPeersListingWith10000Online(t *testing.T) {
	// 10 000 "client joined" lines in the test log would take longer than the test.
	// CC-2 reads nothing until the end, so it answers no keepalive ping
	// (the client library answers pings only while reading); on a loaded
	// machine the crowd takes more than two ping intervals to join and
	// CC-2 would be dropped as silent. Keepalive is not under test here.
	// The default store: a join does not wait for its session row.
	r := startRelay(t, func(s *Server, o *hub.Options) {
		o.Logger = slog.New(slog.DiscardHandler)
		s.PingInterval = time.Hour
	})
	a, _ := r.connect("CC-1", 0)
	b, _ := r.connect("CC-2", 0)
	ctx := context.Background()
	const crowd = 10000
	joinStart := time.Now()
	for i := range crowd {
		_, _, err := r.srv.Hub.Join(ctx, &protocol.Hello{Proto: 1, ClientID: fmt.Sprintf("CROWD-%05d", i), Host: "crowd-host",
			PID: 40000 + i, Cwd: "/home/someone/src/project", Agent: "loadgen", Quiet: true}, false)
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d quiet peers joined in %s", crowd, time.Since(joinStart))
	start := time.Now()
	a.send(&protocol.Peers{Ref: "all"})
	p := expect[*protocol.Peers](a)
	took := time.Since(start)
	if len(p.Peers) != crowd+2 || p.Peers[0].ID != "CC-1" || p.Peers[len(p.Peers)-1].ID != "CROWD-09999" {
		t.Fatalf("listed %d peers (first %s), want %d", len(p.Peers), p.Peers[0].ID, crowd+2)
	}
	size, _ := protocol.Encode(p)
	t.Logf("peers listing of %d: %d bytes in %s", len(p.Peers), len(size), took)
	if len(size) > protocol.DefaultMaxFrameBytes {
		t.Fatalf("the listing is %d bytes, over a client's frame limit of %d: relay-mcp could not read it", len(size), protocol.DefaultMaxFrameBytes)
	}
	// A new non-quiet session's welcome lists the crowd too.
	c, w := r.connect("CC-3", 0)
	if len(w.Peers) != crowd+3 {
		t.Fatalf("welcome lists %d peers", len(w.Peers))
	}
	for i := range 20 {
		a.send(&protocol.Send{Ref: fmt.Sprint(i), To: protocol.Recipients{"CC-2", "CC-3"}, Body: fmt.Sprint("m", i)})
		expect[*protocol.Accepted](a)
	}
	for _, cl := range []*client{b, c} {
		for i := range 20 {
			if m := expect[*protocol.Message](cl); m.Body != fmt.Sprint("m", i) {
				t.Fatalf("%s got %q, want m%d", cl.id, m.Body, i)
			}
		}
	}
}

// Many connections saying hello at once: each gets a welcome or, past the
// per-address limit, a clear 429 before any WebSocket; two peers talking
// through it all lose nothing; the relay is intact afterwards.
func TestHelloFlood(t *testing.T) {
	const flood, perAddr = 300, 200
	// The default store: a hello does not wait for its session row's
	// commit, so a flood of them is no flood of commits to wait for.
	r := startRelay(t, func(s *Server, o *hub.Options) {
		s.MaxConnsPerAddr = perAddr
	})
	a, _ := r.connect("CC-1", 0)
	b, _ := r.connect("CC-2", 0)

	var (
		wg                        sync.WaitGroup
		mu                        sync.Mutex
		welcomed, limited, others int
		held                      []*websocket.Conn
	)
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ws, resp, err := websocket.Dial(ctx, r.url+"/v1/ws", nil)
			if err != nil {
				mu.Lock()
				defer mu.Unlock()
				if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
					limited++
				} else {
					others++
					t.Errorf("flood %d: %v", i, err)
				}
				return
			}
			hello, _ := protocol.Encode(&protocol.Hello{Proto: 1, ClientID: fmt.Sprintf("FLOOD-%d", i), Quiet: i%2 == 0})
			if err := ws.Write(ctx, websocket.MessageText, hello); err != nil {
				t.Errorf("flood %d: hello: %v", i, err)
				ws.CloseNow()
				return
			}
			for {
				_, data, err := ws.Read(ctx)
				if err != nil {
					t.Errorf("flood %d: no welcome: %v", i, err)
					ws.CloseNow()
					return
				}
				if f, _ := protocol.Decode(data); f != nil && f.Type() == protocol.TypeWelcome {
					break
				}
			}
			// Keep reading (answers pings, drains presence) until closed.
			go func() {
				for {
					if _, _, err := ws.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			mu.Lock()
			welcomed++
			held = append(held, ws)
			mu.Unlock()
		}()
	}
	// Meanwhile CC-1 talks to CC-2.
	const n = 100
	for i := range n {
		a.send(&protocol.Send{Ref: fmt.Sprint(i), To: protocol.Recipients{"CC-2"}, Body: fmt.Sprint("during the flood ", i)})
	}
	for i := range n {
		m := expect[*protocol.Message](b)
		if m.Body != fmt.Sprint("during the flood ", i) {
			t.Fatalf("CC-2 got %q, want message %d", m.Body, i)
		}
		b.send(&protocol.Ack{Upto: m.Seq})
	}
	for range n {
		expect[*protocol.Accepted](a)
	}
	wg.Wait()
	t.Logf("flood of %d: %d welcomed, %d refused with 429", flood, welcomed, limited)
	// CC-1 and CC-2 hold 2 of the address's slots.
	if welcomed != perAddr-2 || limited != flood-welcomed || others != 0 {
		t.Fatalf("welcomed %d, 429 %d, other failures %d; want %d welcomed", welcomed, limited, others, perAddr-2)
	}
	for _, ws := range held {
		ws.Close(websocket.StatusNormalClosure, "")
	}
	waitFor(t, "the flood to leave", func() bool { return r.srv.Hub.Online() == 2 })
	c, _ := r.connect("CC-3", 0)
	c.send(&protocol.Peers{Ref: "p"})
	if p := expect[*protocol.Peers](c); len(p.Peers) != 3 {
		t.Fatalf("after the flood: %d peers", len(p.Peers))
	}
	if !strings.HasPrefix(r.url, "ws://127.0.0.1") {
		t.Fatalf("relay not on loopback: %s", r.url)
	}
}
