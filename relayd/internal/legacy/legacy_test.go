package legacy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

func TestDecode(t *testing.T) {
	c := New(protocol.Limits{})
	f, err := c.Decode([]byte(`{"type":"register","clientId":"CC-1","meta":{"hostname":"box","cwd":"/src","pid":42,"name":"auth"}}`))
	if err != nil {
		t.Fatal(err)
	}
	h := f.(*protocol.Hello)
	if h.ClientID != "CC-1" || h.Host != "box" || h.Cwd != "/src" || h.PID != 42 || h.Label != "auth" || h.Proto != protocol.Version {
		t.Fatalf("hello = %+v", h)
	}
	for in, want := range map[string]protocol.Recipients{
		`{"type":"message","content":"x"}`:                    {"*"}, // the older relay's "everyone"
		`{"type":"message","to":null,"content":"x"}`:          {"*"},
		`{"type":"message","to":"","content":"x"}`:            {"*"},
		`{"type":"message","to":"all","content":"x"}`:         {"*"},
		`{"type":"message","to":"*","content":"x"}`:           {"*"},
		`{"type":"message","to":"CC-2","content":"x"}`:        {"CC-2"},
		`{"type":"message","to":"CC-2, CODEX","content":"x"}`: {"CC-2", "CODEX"},
	} {
		f, err := c.Decode([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := f.(*protocol.Send).To; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: to = %v, want %v", in, got, want)
		}
	}
	before := time.Now()
	f, err = c.Decode([]byte(`{"type":"ping"}`))
	if p, ok := f.(*Pong); err != nil || !ok || p.At.Before(before) || p.At.After(time.Now()) {
		t.Fatalf("ping = %#v, %v; want a Pong stamped now", f, err)
	}
	// Each send gets its own ref, so the relay never takes two messages
	// with the same text for a retry.
	a, _ := c.Decode([]byte(`{"type":"message","to":"all","content":"same"}`))
	b, _ := c.Decode([]byte(`{"type":"message","to":"all","content":"same"}`))
	other, _ := New(protocol.Limits{}).Decode([]byte(`{"type":"message","to":"all","content":"same"}`))
	refs := map[string]bool{a.(*protocol.Send).Ref: true, b.(*protocol.Send).Ref: true, other.(*protocol.Send).Ref: true}
	if len(refs) != 3 {
		t.Fatalf("refs repeat: %v", refs)
	}
}

func TestDecodeErrors(t *testing.T) {
	c := New(protocol.Limits{MaxBodyBytes: 10})
	for in, code := range map[string]protocol.Code{
		`nope`:                                 protocol.CodeBadJSON,
		`{"clientId":"x"}`:                     protocol.CodeMissingField,
		`{"type":"fly"}`:                       protocol.CodeUnknownType,
		`{"type":"register","clientId":"a b"}`: protocol.CodeBadID,
		`{"type":"register","clientId":"A","meta":7}`:         protocol.CodeBadField,
		`{"type":"message","to":"A"}`:                         protocol.CodeMissingField,
		`{"type":"message","to":"A","content":"01234567890"}`: protocol.CodeTooLarge,
	} {
		_, err := c.Decode([]byte(in))
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Code != code {
			t.Errorf("Decode(%s) = %v, want code %s", in, err, code)
		}
	}
}

// FuzzDecode: older-protocol frames come from outside; decoding must never
// panic and must fail with a typed error.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"register","clientId":"CC-1","meta":{"host":"h"}}`,
		`{"type":"message","to":"all","content":"hi"}`,
		`{"type":"get_history","count":5,"from":"CC-2"}`,
		`{"type":"get_peers"}`, `{"type":"clear_history"}`, `{"type":"message","to":"a,b,,c","content":""}`,
		`{"type":"message","content":"to everyone"}`, `{"type":"ping"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := New(protocol.Limits{}).Decode(data)
		if err != nil {
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code == "" || pe.Message == "" {
				t.Fatalf("error %v (%T) is not a complete *protocol.Error", err, err)
			}
			return
		}
		if _, ok := fr.(*Pong); ok {
			return // answered by the connection itself
		}
		if !protocol.ClientFrame(fr.Type()) {
			t.Fatalf("decoded to a relay frame %s", fr.Type())
		}
	})
}

// Every relay frame the hub hands a connection has an older form or is
// deliberately skipped; none fails to encode.
func TestEncode(t *testing.T) {
	c := New(protocol.Limits{})
	ts := time.Date(2026, 11, 25, 8, 15, 1, 100478557, time.FixedZone("CET", 3600))
	frames := []protocol.Frame{
		&protocol.Welcome{ClientID: "OLD", Peers: []protocol.Peer{{ID: "CC-1"}, {ID: "OLD"}}},
		&protocol.Presence{Event: protocol.PresenceJoined, Peer: protocol.Peer{ID: "CC-2"}},
		&protocol.Presence{Event: protocol.PresenceLeft, Peer: protocol.Peer{ID: "CC-1"}},
		&protocol.Message{ID: "m", From: "CC-1", To: []string{"OLD"}, Body: "hi <b>&</b>", TS: ts},
		&protocol.Message{ID: "b", From: "CC-1", To: []string{protocol.Broadcast}, Body: "all of you", TS: ts},
		&protocol.Message{ID: "l", From: "CC-1", To: []string{"OLD", "CC-2"}, Body: "two", TS: ts},
		&protocol.History{Messages: []protocol.Message{{ID: "m", From: "CC-1", To: []string{"OLD"}, Body: "hi", TS: ts}}},
		&protocol.History{},
		&protocol.Peers{Peers: []protocol.Peer{{ID: "CC-2"}, {ID: "OLD"}}},
		&Pong{At: time.UnixMilli(1764576000123)},
		&protocol.Accepted{ID: "m", Recipients: []protocol.Outcome{{ID: "X", Status: protocol.StatusUnknown}}},
		&protocol.ErrorFrame{Code: protocol.CodeBadJSON, Message: "bad"},
		&protocol.ErrorFrame{Code: protocol.CodeHelloRequired, Message: "the first frame must be hello …"},
		&protocol.Cleared{Cleared: 2},
	}
	want := []string{
		`{"type":"registered","clientId":"OLD","peers":["CC-1"]}`, // the others only
		`{"type":"peer_joined","clientId":"CC-2","peers":["CC-1","CC-2","OLD"]}`,
		`{"type":"peer_left","clientId":"CC-1","peers":["CC-2","OLD"]}`,
		`{"type":"message","from":"CC-1","to":"OLD","content":"hi <b>&</b>","timestamp":"2026-11-25T07:15:01.100Z","id":"m"}`, // as JSON.stringify writes it
		`{"type":"message","from":"CC-1","to":"all","content":"all of you","timestamp":"2026-11-25T07:15:01.100Z","id":"b"}`,
		`{"type":"message","from":"CC-1","to":"OLD,CC-2","content":"two","timestamp":"2026-11-25T07:15:01.100Z","id":"l"}`,
		`{"type":"history","messages":[{"type":"message","from":"CC-1","to":"OLD","content":"hi","timestamp":"2026-11-25T07:15:01.100Z","id":"m"}]}`,
		`{"type":"history","messages":[]}`,
		`{"type":"peers","peers":["CC-2","OLD"],"self":"OLD"}`,
		`{"type":"pong","timestamp":1764576000123}`,
		`{"type":"error","message":"message not delivered to X (unknown)"}`,
		`{"type":"error","message":"bad"}`,
		`{"type":"error","message":"the first frame must be register {\"type\":\"register\",\"clientId\":\"…\"}"}`,
		`{"type":"history_cleared","cleared":2}`,
	}
	// Each after what the writer's buffer held: appended, the rest kept.
	const before = "held"
	for i, f := range frames {
		b, ok, err := c.AppendEncode([]byte(before), f, "OLD")
		if err != nil || !ok || string(b) != before+want[i] {
			t.Errorf("AppendEncode(%T) = %s %v %v\nwant %s", f, b, ok, err, before+want[i])
		}
	}
	if b, ok, _ := c.AppendEncode([]byte(before), &protocol.Accepted{Recipients: []protocol.Outcome{{ID: "A", Status: protocol.StatusDelivered}}}, "OLD"); ok || string(b) != before {
		t.Errorf("a fully delivered accepted has no older form and must be skipped, the buffer as it was: %q, %v", b, ok)
	}
	for _, f := range []protocol.Frame{
		&protocol.Presence{Event: protocol.PresenceStatus, Peer: protocol.Peer{ID: "CC-2", Status: "x"}},
		&protocol.Mail{For: "OLD", Count: 1, Seq: 1},
	} {
		if b, ok, _ := c.AppendEncode(nil, f, "OLD"); ok {
			t.Errorf("AppendEncode(%T) = %s; the older protocol has no form for it and must skip it", f, b)
		}
	}
}
