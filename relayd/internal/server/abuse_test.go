package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
)

// TestBadInputWhilePeersTalk throws every bad input we could think of at a
// live relay — on protocol v1, on the older protocol, and below both at the
// WebSocket framing — while two well-behaved peers play ping-pong through
// it. Each bad input gets a clear error (or a close with a reason when the
// socket itself is unusable); afterwards the relay still serves, and the
// pair lost, duplicated and reordered nothing.
func TestBadInputWhilePeersTalk(t *testing.T) {
	onEachStore(t, func(t *testing.T, kind string) {
		r := startRelayOn(t, kind, func(s *Server, _ *hub.Options) {
			s.Limits = protocol.Limits{MaxFrameBytes: 64 << 10, MaxBodyBytes: 4 << 10}
		})
		pair := startPingPong(t, r)
		pair.waitRounds(1) // the pair is talking before the abuse starts

		t.Run("protocol v1", func(t *testing.T) {
			a, _ := r.connect("ABUSER", 0)
			nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
			cases := []struct {
				name, in string
				code     protocol.Code
				says     string // a word the error message must hold
			}{
				{"truncated frame", `{"type":"send","ref":"t","to":["PONG"],"body":"x`, protocol.CodeBadJSON, "JSON"},
				{"truncated after type", `{"type":"send"`, protocol.CodeBadJSON, "JSON"},
				{"invalid utf-8 in body", "{\"type\":\"send\",\"ref\":\"u\",\"to\":[\"PONG\"],\"body\":\"\xc3\x28\"}", protocol.CodeBadJSON, "UTF-8"},
				{"invalid utf-8 in id", "{\"type\":\"send\",\"ref\":\"u\",\"to\":[\"PO\xffNG\"],\"body\":\"x\"}", protocol.CodeBadJSON, "UTF-8"},
				{"lone surrogate byte", "{\"type\":\"peers\",\"ref\":\"\xed\xa0\x80\"}", protocol.CodeBadJSON, "UTF-8"},
				{"deep nesting beside", `{"type":"peers","ref":"n","x":` + nest(20000) + `}`, protocol.CodeBadJSON, "JSON"},
				{"deep nesting as body", `{"type":"send","ref":"n","to":["PONG"],"body":` + nest(5000) + `}`, protocol.CodeBadField, "body"},
				{"deep object nesting", `{"type":"peers","ref":"n","x":` + strings.Repeat(`{"a":`, 10200) + `1` + strings.Repeat("}", 10200) + `}`, protocol.CodeBadJSON, "JSON"},
				{"huge ack", `{"type":"ack","upto":1e999}`, protocol.CodeBadField, "upto"},
				{"huge integer ack", `{"type":"ack","upto":123456789012345678901234567890}`, protocol.CodeBadField, "upto"},
				{"negative ack", `{"type":"ack","upto":-5}`, protocol.CodeBadField, "upto"},
				{"fractional ack", `{"type":"ack","upto":1.5}`, protocol.CodeBadField, "upto"},
				{"huge history limit", `{"type":"history","ref":"h","limit":1e308}`, protocol.CodeBadField, "limit"},
				{"history limit past max", `{"type":"history","ref":"h","limit":100000000}`, protocol.CodeBadField, "limit"},
				{"null byte in to", `{"type":"send","ref":"z","to":["PO\u0000NG"],"body":"x"}`, protocol.CodeBadID, "position 3"},
				{"null byte in one of many", `{"type":"send","ref":"z","to":["PONG","X\u0000"],"body":"x"}`, protocol.CodeBadID, "id"},
				{"null byte in reply_to", `{"type":"send","ref":"z","to":["PONG"],"body":"x","reply_to":"\u0000"}`, protocol.CodeBadID, "message id"},
				{"null byte in history with", `{"type":"history","ref":"z","with":"PING\u0000"}`, protocol.CodeBadID, "id"},
				{"null byte in history cursor", `{"type":"history","ref":"z","before":"01\u0000"}`, protocol.CodeBadID, "message id"},
				{"null byte in thread", `{"type":"send","ref":"z","to":["PONG"],"body":"x","thread":"a\u0000b"}`, protocol.CodeBadField, "control character"},
				{"null byte in watch ids", `{"type":"watch","ids":["CODEX\u0000"]}`, protocol.CodeBadID, "position 6"},
				{"null byte in read ids", `{"type":"read","ids":["01\u0000"]}`, protocol.CodeBadID, "message id"},
				{"null byte in receipts ids", `{"type":"receipts","ids":["01\u0000"]}`, protocol.CodeBadID, "message id"},
				{"control character in status", `{"type":"status","status":"busy\u0000\nrm -rf"}`, protocol.CodeBadField, "one line"},
				{"path as id", `{"type":"send","ref":"z","to":["../../etc/passwd"],"body":"x"}`, protocol.CodeBadID, "ids use only"},
				{"id too long", `{"type":"send","ref":"z","to":["` + strings.Repeat("A", 65) + `"],"body":"x"}`, protocol.CodeBadID, "limit is 64"},
				{"too many recipients", `{"type":"send","ref":"z","to":[` + strings.TrimSuffix(strings.Repeat(`"R",`, 2000), ",") + `],"body":"x"}`, protocol.CodeTooLarge, "recipients"},
				{"star among ids", `{"type":"send","ref":"z","to":["PONG","*"],"body":"x"}`, protocol.CodeBadField, "alone"},
				{"wrong field type", `{"type":"send","ref":"z","to":["PONG"],"body":42}`, protocol.CodeBadField, "body"},
				{"type not a string", `{"type":7}`, protocol.CodeBadJSON, ""},
				{"body over the limit", `{"type":"send","ref":"big","to":["PONG"],"body":"` + strings.Repeat("b", 5<<10) + `"}`, protocol.CodeTooLarge, "limit"},
				{"only whitespace", "  \n\t ", protocol.CodeBadJSON, "JSON object"},
				{"json string", `"hello"`, protocol.CodeBadJSON, "JSON object"},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					a := a.in(t)
					a.writeText(tc.in)
					e := expect[*protocol.ErrorFrame](a)
					if e.Code != tc.code || e.Message == "" || !strings.Contains(e.Message, tc.says) {
						t.Fatalf("error = %+v, want code %s saying %q", e, tc.code, tc.says)
					}
				})
			}
			t.Run("binary frame", func(t *testing.T) {
				a := a.in(t)
				write(t, a.ws, websocket.MessageBinary, []byte(`{"type":"peers","ref":"bin"}`))
				if e := expect[*protocol.ErrorFrame](a); e.Code != protocol.CodeBadJSON || !strings.Contains(e.Message, "text message") {
					t.Fatalf("error = %+v", e)
				}
			})
			// Nothing of the above was delivered, and the abuser's own
			// connection still works.
			a.send(&protocol.Peers{Ref: "after"})
			if p := expect[*protocol.Peers](a); p.Ref != "after" {
				t.Fatalf("peers = %+v", p)
			}
		})

		t.Run("older protocol", func(t *testing.T) {
			o := r.connectLegacy("OLD-ABUSER", "")
			cases := []struct{ name, in, says string }{
				{"truncated", `{"type":"message","to":"PONG","content":"x`, "JSON"},
				{"invalid utf-8", "{\"type\":\"message\",\"to\":\"PONG\",\"content\":\"\xff\"}", "UTF-8"},
				{"deep nesting", `{"type":"get_peers","x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, "JSON"},
				{"null byte in to", `{"type":"message","to":"PO\u0000NG","content":"x"}`, "position 3"},
				{"null byte in a list", `{"type":"message","to":"PONG,\u0000","content":"x"}`, "id"},
				{"huge count", `{"type":"get_history","count":1e999}`, "count"},
				{"unknown type", `{"type":"shutdown"}`, "unknown frame type"},
				{"missing content", `{"type":"message","to":"PONG"}`, "content"},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					o := &legacyClient{o.in(t)}
					o.writeText(tc.in)
					m := o.nextOfType("error")
					if msg, _ := m["message"].(string); !strings.Contains(msg, tc.says) {
						t.Fatalf("error %v does not say %q", m, tc.says)
					}
				})
			}
			t.Run("binary frame", func(t *testing.T) {
				o := &legacyClient{o.in(t)}
				write(t, o.ws, websocket.MessageBinary, []byte{0xff, 0})
				if m := o.nextOfType("error"); !strings.Contains(m["message"].(string), "binary") {
					t.Fatalf("error = %v", m)
				}
			})
			t.Run("bad register ids", func(t *testing.T) {
				lc := &legacyClient{r.dialRaw("/", nil).in(t)}
				for _, id := range []string{"CC\u00001", "../x", "", "all", strings.Repeat("x", 65)} {
					lc.writeJSON(map[string]any{"type": "register", "clientId": id})
					if m := lc.nextOfType("error"); m["message"] == "" {
						t.Fatalf("register as %q: %v", id, m)
					}
				}
			})
			o.writeJSON(map[string]any{"type": "get_peers"})
			o.nextOfType("peers")
		})

		// Below the protocols: broken WebSocket framing on a raw socket. The
		// library closes such a connection; the relay must only lose that one.
		t.Run("websocket framing", func(t *testing.T) {
			hello := []byte(`{"type":"hello","proto":1,"client_id":"RAW"}`)
			const hangUp, dropped = -1, 0
			cases := []struct {
				name  string
				frame func() []byte
				// close is the close code expected, or dropped: the relay
				// drops the socket without one, or hangUp: the client does.
				close websocket.StatusCode
			}{
				{"truncated frame then hang-up", func() []byte { return maskedFrame(0x81, make([]byte, 1000))[:200] }, hangUp},
				{"unmasked client frame", func() []byte { return append([]byte{0x81, byte(len(hello))}, hello...) }, dropped},
				{"reserved opcode", func() []byte { return maskedFrame(0x83, []byte("x")) }, websocket.StatusProtocolError},
				{"reserved bits", func() []byte { return maskedFrame(0xc1, []byte("x")) }, websocket.StatusProtocolError},
				{"continuation without a start", func() []byte { return maskedFrame(0x80, []byte("x")) }, websocket.StatusProtocolError},
				{"length of 2^62 bytes", func() []byte {
					// The header claims 4 EiB; the relay reads up to its frame limit, then closes.
					return append([]byte{0x81, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, make([]byte, 70<<10)...)
				}, websocket.StatusMessageTooBig},
				{"control frame over 125 bytes", func() []byte { return maskedFrame(0x89, make([]byte, 200)) }, websocket.StatusProtocolError},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					conn := rawDial(t, r)
					conn.Write(maskedFrame(0x81, hello))
					conn.Write(tc.frame())
					if tc.close == hangUp {
						conn.Close()
					} else if code := rawCloseCode(t, conn); code != tc.close {
						t.Fatalf("closed with %d, want %d", code, tc.close)
					}
					waitFor(t, "RAW to leave", func() bool {
						for _, p := range r.srv.Hub.Peers() {
							if p.ID == "RAW" {
								return false
							}
						}
						return true
					})
				})
			}
		})

		t.Run("plain HTTP at the socket", func(t *testing.T) {
			resp, err := http.Get(r.hts.URL + "/v1/ws")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUpgradeRequired {
				t.Fatalf("GET /v1/ws without an upgrade: %d, want 426", resp.StatusCode)
			}
		})

		pair.waitRounds(pair.played() + 3) // and still talking after it
		rounds := pair.stop()
		t.Logf("the pair played %d rounds through the abuse, none lost", rounds)
		c, _ := r.connect("AFTER", 0)
		c.send(&protocol.Peers{Ref: "p"})
		if p := expect[*protocol.Peers](c); len(p.Peers) < 3 {
			t.Fatalf("after the abuse: %+v", p.Peers)
		}
	})
}

// in is c reporting failures to t, for use inside a subtest.
func (c *client) in(t *testing.T) *client { return &client{t: t, ws: c.ws, id: c.id} }

func write(t *testing.T, ws *websocket.Conn, typ websocket.MessageType, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Write(ctx, typ, b); err != nil {
		t.Fatal(err)
	}
}

// pingPong is two well-behaved peers, PING and PONG, exchanging numbered
// messages through the relay: PING sends "ping N", PONG acks it and answers
// "pong N", and only then does PING send the next. Any loss, duplicate or
// reordering stops the game with an error.
type pingPong struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan struct{}
	rounds atomic.Int64
	err    error
}

func (p *pingPong) played() int { return int(p.rounds.Load()) }

// waitRounds waits until n rounds were played, or the game ended.
func (p *pingPong) waitRounds(n int) {
	p.t.Helper()
	deadline := time.After(20 * time.Second)
	for p.played() < n {
		select {
		case <-p.done:
			p.t.Fatalf("the ping-pong pair stopped after %d rounds: %v", p.played(), p.err)
		case <-deadline:
			p.t.Fatalf("the ping-pong pair played %d rounds in 20 s, want %d", p.played(), n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func startPingPong(t *testing.T, r *relay) *pingPong {
	ping, _ := r.connect("PING", 0)
	pong, _ := r.connect("PONG", 0)
	ctx, cancel := context.WithCancel(context.Background())
	p := &pingPong{t: t, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	pongErr := make(chan error, 1)
	go func() { // PONG answers every ping until the connection ends
		defer wg.Done()
		for i := 0; ; i++ {
			m, err := nextMessage(pong)
			if err != nil {
				if ctx.Err() == nil {
					pongErr <- fmt.Errorf("PONG: %w", err)
				}
				return
			}
			if m.From != "PING" || m.Body != fmt.Sprint("ping ", i) {
				pongErr <- fmt.Errorf("PONG got %q from %s, want ping %d", m.Body, m.From, i)
				return
			}
			if err := sendFrame(pong, &protocol.Ack{Upto: m.Seq}); err != nil {
				pongErr <- err
				return
			}
			if err := sendFrame(pong, &protocol.Send{Ref: fmt.Sprint("r", i), To: protocol.Recipients{"PING"}, Body: fmt.Sprint("pong ", i)}); err != nil {
				pongErr <- err
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		defer close(p.done)
		for i := 0; ctx.Err() == nil; i++ {
			if err := sendFrame(ping, &protocol.Send{Ref: fmt.Sprint("q", i), To: protocol.Recipients{"PONG"}, Body: fmt.Sprint("ping ", i)}); err != nil {
				p.err = err
				return
			}
			m, err := nextMessage(ping)
			if err != nil {
				p.err = fmt.Errorf("PING waiting for pong %d: %w", i, err)
				return
			}
			if m.From != "PONG" || m.Body != fmt.Sprint("pong ", i) {
				p.err = fmt.Errorf("PING got %q from %s, want pong %d", m.Body, m.From, i)
				return
			}
			if err := sendFrame(ping, &protocol.Ack{Upto: m.Seq}); err != nil {
				p.err = err
				return
			}
			p.rounds.Store(int64(i + 1))
			time.Sleep(time.Millisecond) // a conversation, not a benchmark
		}
	}()
	t.Cleanup(func() {
		cancel()
		ping.ws.CloseNow()
		pong.ws.CloseNow()
		wg.Wait()
		select {
		case err := <-pongErr:
			t.Error(err)
		default:
		}
	})
	return p
}

// stop ends the game after the round in flight and returns the rounds
// played, failing the test if any went wrong.
func (p *pingPong) stop() int {
	p.t.Helper()
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatal("the ping-pong pair is stuck")
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return p.played()
}

// nextMessage reads frames until a message, skipping presence, accepted
// and acks (commits of provisional messages); anything else is an error. Each read gives up after 10 s.
func nextMessage(c *client) (*protocol.Message, error) {
	for {
		f, err := c.read(10 * time.Second)
		if err != nil {
			return nil, err
		}
		switch f := f.(type) {
		case *protocol.Message:
			return f, nil
		case *protocol.Presence, *protocol.Accepted, *protocol.Ack:
		default:
			return nil, fmt.Errorf("unexpected %T %+v", f, f)
		}
	}
}

func sendFrame(c *client, f protocol.Frame) error {
	b, err := protocol.Encode(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// rawDial upgrades a plain TCP connection to the relay's /v1/ws by hand,
// so the test can write WebSocket frames no library would.
func rawDial(t *testing.T, r *relay) net.Conn {
	t.Helper()
	host := strings.TrimPrefix(r.url, "ws://")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("raw upgrade: %s", resp.Status)
	}
	if br.Buffered() > 0 {
		t.Fatal("the relay wrote before hello")
	}
	return conn
}

// maskedFrame is one final client frame with opcode op (first byte
// including FIN) and payload, masked as RFC 6455 requires of clients.
func maskedFrame(b0 byte, payload []byte) []byte {
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n < 1<<16:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	var key [4]byte
	rand.Read(key[:])
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

// rawCloseCode reads the relay's frames until its close frame and returns
// the close code; 0 if the socket ended without one.
func rawCloseCode(t *testing.T, conn net.Conn) websocket.StatusCode {
	t.Helper()
	br := bufio.NewReader(conn)
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return 0
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			io.ReadFull(br, b[:])
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			io.ReadFull(br, b[:])
			n = binary.BigEndian.Uint64(b[:])
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return 0
		}
		if h[0]&0x0f == 0x8 {
			if len(payload) < 2 {
				return 0
			}
			return websocket.StatusCode(binary.BigEndian.Uint16(payload))
		}
	}
}
