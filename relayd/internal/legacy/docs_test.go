package legacy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

// olderFrames returns the lines of the ```json blocks under each ###
// heading of docs/protocol.md's section on the older protocol, with their
// line numbers.
func olderFrames(t *testing.T) map[string][]docLine {
	t.Helper()
	b, err := os.ReadFile("../../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]docLine{}
	in, inJSON, heading := false, false, ""
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			in = strings.HasPrefix(line, "## The older Node relay's protocol")
		case !in:
		case strings.HasPrefix(line, "### "):
			heading = strings.TrimPrefix(line, "### ")
		case strings.HasPrefix(line, "```"):
			inJSON = !inJSON && line == "```json"
		case inJSON && strings.TrimSpace(line) != "":
			out[heading] = append(out[heading], docLine{i + 1, line})
		}
	}
	return out
}

type docLine struct {
	n    int
	text string
}

// The older clients' frames docs/protocol.md shows are read by Decode,
// with no field it does not know.
func TestDocOlderClientFrames(t *testing.T) {
	lines := olderFrames(t)["Client → relay"]
	if len(lines) < 3 {
		t.Fatalf("found %d older client frames in docs/protocol.md: is the extraction broken?", len(lines))
	}
	for _, l := range lines {
		if _, err := New(protocol.Limits{}).Decode([]byte(l.text)); err != nil {
			t.Errorf("docs/protocol.md:%d: %s\n\tDecode: %v", l.n, l.text, err)
		}
		var f clientFrame
		if err := strictUnmarshal([]byte(l.text), &f); err != nil {
			t.Errorf("docs/protocol.md:%d: %s\n\t%v", l.n, l.text, err)
		} else if len(f.Meta) > 0 {
			if err := strictUnmarshal(f.Meta, new(meta)); err != nil {
				t.Errorf("docs/protocol.md:%d: meta: %v", l.n, err)
			}
		}
	}
}

func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// The relay's frames docs/protocol.md shows older clients are what Encode
// writes for the v1 frames they stand for.
func TestDocOlderRelayFrames(t *testing.T) {
	lines := olderFrames(t)["Relay → client"]
	if len(lines) < 4 {
		t.Fatalf("found %d older relay frames in docs/protocol.md: is the extraction broken?", len(lines))
	}
	for _, l := range lines {
		got, err := encodeLike([]byte(l.text))
		if err != nil {
			t.Errorf("docs/protocol.md:%d: %s\n\t%v", l.n, l.text, err)
			continue
		}
		var a, b any
		json.Unmarshal([]byte(l.text), &a)
		json.Unmarshal(got, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("docs/protocol.md:%d: %s\n\tEncode writes %s", l.n, l.text, got)
		}
	}
}

// encodeLike builds the v1 frame a documented older frame stands for, from
// the values it shows, and encodes it for an older client.
func encodeLike(doc []byte) ([]byte, error) {
	type message struct {
		From      string `json:"from"`
		To        string `json:"to"`
		Content   string `json:"content"`
		Timestamp string `json:"timestamp"`
		ID        string `json:"id"`
	}
	// The keys every frame but message and pong may have ("timestamp" is
	// a string in one and a number in the other).
	var d struct {
		Type     string    `json:"type"`
		ClientID string    `json:"clientId"`
		Peers    []string  `json:"peers"`
		Self     string    `json:"self"`
		Messages []message `json:"messages"`
		Message  string    `json:"message"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	peers := func(ids []string) []protocol.Peer {
		out := []protocol.Peer{}
		for _, id := range ids {
			out = append(out, protocol.Peer{ID: id})
		}
		return out
	}
	// v1 lists recipients; the older "to" is one string.
	v1 := func(m message) (protocol.Message, error) {
		ts, err := time.Parse(time.RFC3339Nano, m.Timestamp)
		to := strings.Split(m.To, ",")
		if m.To == "all" {
			to = []string{protocol.Broadcast}
		}
		return protocol.Message{From: m.From, Body: m.Content, TS: ts, To: to, ID: m.ID}, err
	}
	c := New(protocol.Limits{})
	self := ""
	var f protocol.Frame
	switch d.Type {
	case "registered":
		// The hub's welcome lists everyone, the client too.
		f = &protocol.Welcome{ClientID: d.ClientID, Peers: peers(append(d.Peers, d.ClientID))}
	case "message":
		var dm message
		if err := json.Unmarshal(doc, &dm); err != nil {
			return nil, err
		}
		m, err := v1(dm)
		if err != nil {
			return nil, err
		}
		f = &m
	case "history":
		h := &protocol.History{}
		for _, dm := range d.Messages {
			m, err := v1(dm)
			if err != nil {
				return nil, err
			}
			h.Messages = append(h.Messages, m)
		}
		f = h
	case "peers":
		f, self = &protocol.Peers{Peers: peers(d.Peers)}, d.Self
	case "pong":
		var p struct {
			Timestamp int64 `json:"timestamp"`
		}
		if err := json.Unmarshal(doc, &p); err != nil {
			return nil, err
		}
		f = &Pong{At: time.UnixMilli(p.Timestamp)}
	case "peer_joined", "peer_left":
		var others []string
		for _, id := range d.Peers {
			if id != d.ClientID {
				others = append(others, id)
			}
		}
		c.setPeers(peers(others))
		ev := protocol.PresenceJoined
		if d.Type == "peer_left" {
			ev = protocol.PresenceLeft
		}
		f = &protocol.Presence{Event: ev, Peer: protocol.Peer{ID: d.ClientID}}
	case "error":
		// A send some recipients did not get: "… to NOBODY (unknown), X (full)".
		var rs []protocol.Outcome
		for _, m := range regexp.MustCompile(`(\S+) \((unknown|full)\)`).FindAllStringSubmatch(d.Message, -1) {
			rs = append(rs, protocol.Outcome{ID: m[1], Status: m[2]})
		}
		if rs == nil {
			return nil, fmt.Errorf("an error frame that is not about undelivered recipients: add its case to this test")
		}
		f = &protocol.Accepted{Recipients: rs}
	default:
		return nil, fmt.Errorf("no case in this test for the older frame %q: add one", d.Type)
	}
	b, _, err := c.AppendEncode(nil, f, self)
	return b, err
}
