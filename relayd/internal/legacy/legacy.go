// Package legacy speaks the older Node relay's JSON protocol (its server.js on
// port 9999, used by its mcp-server.js and test-client.js) so those clients
// keep working against relayd while a team migrates. It only translates: the
// older frames become protocol v1 frames for the hub, and the hub's frames
// become older frames. Legacy and v1 clients see each other and exchange
// messages.
//
// Client → relay:
//
//	{"type":"register","clientId":"CC-1","meta":{"host":…,"cwd":…,"pid":…}}  → hello
//	{"type":"message","to":"CC-2"|"all"|missing,"content":"…"}             → send
//	{"type":"get_peers"}                                                    → peers
//	{"type":"get_sessions"}                                                 → sessions
//	{"type":"get_history","count":20,"from":"CC-2"}                         → history
//	{"type":"clear_history"}                                                → clear
//	{"type":"ping"}                                                         → answered here: pong
//
// Relay → client, with the older relay's keys, key order and JSON types
// (relayd adds keys, never changes or drops one):
//
//	welcome  → {"type":"registered","clientId":self,"peers":[the other ids]}
//	peers    → {"type":"peers","peers":[all ids],"self":id}
//	sessions → {"type":"sessions","sessions":[…],"self":id}
//	history  → {"type":"history","messages":[{"type":"message","from","to","content","timestamp","id"}]}
//	cleared  → {"type":"history_cleared","cleared":n}
//	presence → {"type":"peer_joined"|"peer_left","clientId":id,"peers":[all ids online]}
//	message  → {"type":"message","from":id,"to":"CC-2"|"all","content":…,"timestamp":ISO 8601,"id":…}
//	Pong     → {"type":"pong","timestamp":milliseconds since the epoch}
//	error    → {"type":"error","message":…}
//
// Unlike the older relay, get_history returns only what that client may see:
// messages to it, broadcasts it received, and its own sends.
package legacy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/claude-relay/claude-relay/protocol"
)

// Codec translates one connection's older-protocol frames. It keeps the list
// of peers the client last heard of, so presence frames can carry the whole
// list as the older relay did: make one per connection with New. Encode is
// called by one goroutine at a time.
type Codec struct {
	limits protocol.Limits
	peers  map[string]bool
	refs   string // prefix making this connection's send refs unique
	sends  int    // numbers them
}

// New returns a codec for one connection; zero limits take protocol
// defaults.
func New(l protocol.Limits) *Codec {
	return &Codec{limits: l, peers: map[string]bool{}, refs: "legacy-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
}

// Pong answers an older client's ping. Decode returns it for "ping": the
// connection answers it itself (see server.LocalReply), the hub never sees
// it, and Encode writes {"type":"pong","timestamp":ms}.
type Pong struct {
	// protocol.Frame has an unexported method, so a frame declared outside
	// protocol embeds one of protocol's to be one. Nothing reads it.
	protocol.Cleared
	At time.Time
}

// Type implements protocol.Frame.
func (*Pong) Type() string { return "pong" }

// LocalReply marks a frame the connection writes back itself instead of
// handing it to the hub.
func (*Pong) LocalReply() {}

// clientFrame is any frame an older client sends.
type clientFrame struct {
	Type     string          `json:"type"`
	ClientID string          `json:"clientId"`
	Meta     json.RawMessage `json:"meta"`
	To       string          `json:"to"`
	Content  *string         `json:"content"`
	Count    int             `json:"count"`
	From     string          `json:"from"`
}

type meta struct {
	Host     string `json:"host"`
	Hostname string `json:"hostname"`
	Cwd      string `json:"cwd"`
	PID      int    `json:"pid"`
	Agent    string `json:"agent"`
	Label    string `json:"label"`
	Name     string `json:"name"`
}

// Name implements server.Codec.
func (*Codec) Name() string { return "legacy" }

// AutoAck implements server.Codec: older clients never ack, so a message
// written to their socket counts as held.
func (*Codec) AutoAck() bool { return true }

// Decode turns one older frame into a protocol frame.
func (c *Codec) Decode(data []byte) (protocol.Frame, error) {
	l := c.limits
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = protocol.DefaultMaxFrameBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = protocol.DefaultMaxBodyBytes
	}
	if len(data) > l.MaxFrameBytes {
		return nil, &protocol.Error{Code: protocol.CodeTooLarge, Message: fmt.Sprintf("frame is %d bytes; the limit is %d", len(data), l.MaxFrameBytes)}
	}
	// encoding/json would quietly turn bad bytes into U+FFFD, so a
	// message would arrive altered; refuse it, as protocol v1 does.
	if !utf8.Valid(data) {
		return nil, &protocol.Error{Code: protocol.CodeBadJSON, Message: "frame is not valid UTF-8; send text as UTF-8"}
	}
	var f clientFrame
	if to, content, ok := decodeMessage(data); ok {
		f = clientFrame{Type: "message", To: to, Content: &content}
	} else if err := json.Unmarshal(data, &f); err != nil {
		return nil, &protocol.Error{Code: protocol.CodeBadJSON, Message: "frame is not a valid JSON object: " + err.Error()}
	}
	var out protocol.Frame
	switch f.Type {
	case "register":
		var m meta
		if len(f.Meta) > 0 && string(f.Meta) != "null" {
			if err := json.Unmarshal(f.Meta, &m); err != nil {
				return nil, &protocol.Error{Code: protocol.CodeBadField, Message: "register.meta must be an object: " + err.Error()}
			}
		}
		if m.Host == "" {
			m.Host = m.Hostname
		}
		if m.Label == "" {
			m.Label = m.Name
		}
		if m.PID < 0 {
			m.PID = 0
		}
		out = &protocol.Hello{Proto: protocol.Version, ClientID: f.ClientID, Host: m.Host, PID: m.PID, Cwd: m.Cwd, Agent: m.Agent, Label: m.Label}
	case "message":
		if f.Content == nil {
			return nil, &protocol.Error{Code: protocol.CodeMissingField, Message: `message frame needs "content"`}
		}
		// The older relay sent a message without "to" to everyone.
		to := protocol.Recipients{f.To}
		if f.To == "" || f.To == protocol.LegacyBroadcast || f.To == protocol.Broadcast {
			to = protocol.Recipients{protocol.Broadcast}
		} else if strings.Contains(f.To, ",") {
			to = to[:0]
			for _, id := range strings.Split(f.To, ",") {
				to = append(to, strings.TrimSpace(id))
			}
		}
		c.sends++
		out = &protocol.Send{Ref: c.refs + "-" + strconv.Itoa(c.sends), To: to, Body: *f.Content}
	case "get_peers":
		out = &protocol.Peers{}
	case "get_sessions":
		out = &protocol.Sessions{}
	case "get_history":
		limit := f.Count
		if limit <= 0 {
			limit = 50
		}
		out = &protocol.History{Limit: min(limit, protocol.MaxHistoryLimit), With: f.From}
	case "clear_history":
		out = &protocol.Clear{}
	case "ping":
		return &Pong{At: time.Now()}, nil
	case "":
		return nil, &protocol.Error{Code: protocol.CodeMissingField, Message: `frame has no "type"`}
	default:
		return nil, &protocol.Error{Code: protocol.CodeUnknownType, Message: fmt.Sprintf("unknown frame type %q; this relay speaks register, message, get_peers, get_sessions, get_history, clear_history and ping on / (and protocol v1 on /v1/ws)", f.Type)}
	}
	// protocol's validation, so both transports accept the same ids and
	// bodies.
	if err := l.Validate(out); err != nil {
		return nil, err
	}
	return out, nil
}

type peerList []string

func ids(peers []protocol.Peer) peerList {
	out := make(peerList, len(peers))
	for i, p := range peers {
		out[i] = p.ID
	}
	return out
}

func (c *Codec) setPeers(peers []protocol.Peer) {
	clear(c.peers)
	for _, p := range peers {
		c.peers[p.ID] = true
	}
}

func (c *Codec) peerList() peerList {
	out := make(peerList, 0, len(c.peers))
	for id := range c.peers {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// legacyMessage is a message as the older relay forwarded it and listed it
// in history, keys in its order. ID is relayd's addition.
type legacyMessage struct {
	Type      string `json:"type"`
	From      string `json:"from"`
	To        string `json:"to"`
	Content   string `json:"content"`
	Timestamp string `json:"timestamp"`
	ID        string `json:"id,omitempty"`
}

// isoMillis is JavaScript's Date.toISOString, the older relay's timestamp.
const isoMillis = "2006-01-02T15:04:05.000Z07:00"

// legacyTo is a message's recipients as the older relay's "to": the one id
// the sender named, "all" for a broadcast (and for a message sent without
// "to"), or the ids joined by commas for relayd's lists.
func legacyTo(to []string) string {
	if len(to) == 0 || protocol.Recipients(to).IsBroadcast() {
		return protocol.LegacyBroadcast
	}
	return strings.Join(to, ",")
}

func toLegacy(m *protocol.Message) legacyMessage {
	return legacyMessage{Type: "message", From: m.From, To: legacyTo(m.To), Content: m.Body, Timestamp: m.TS.UTC().Format(isoMillis), ID: m.ID}
}

// AppendEncode appends a hub frame, turned into the older protocol, to dst.
// Frames the older protocol has no form for (accepted for a message
// everyone got) are skipped: ok is false and dst is returned as it was.
func (c *Codec) AppendEncode(dst []byte, f protocol.Frame, self string) ([]byte, bool, error) {
	var v any
	switch f := f.(type) {
	case *protocol.Welcome:
		// The codec's list holds everyone, this client too, for presence;
		// registered lists only the others, as the older relay did.
		c.setPeers(f.Peers)
		c.peers[f.ClientID] = true
		others := make(peerList, 0, len(f.Peers))
		for _, p := range f.Peers {
			if p.ID != f.ClientID {
				others = append(others, p.ID)
			}
		}
		v = struct {
			Type     string   `json:"type"`
			ClientID string   `json:"clientId"`
			Peers    peerList `json:"peers"`
		}{"registered", f.ClientID, others}
	case *protocol.Peers:
		c.setPeers(f.Peers)
		v = struct {
			Type  string   `json:"type"`
			Peers peerList `json:"peers"`
			Self  string   `json:"self"`
		}{"peers", ids(f.Peers), self}
	case *protocol.Sessions:
		type session struct {
			ClientID string `json:"clientId"`
			Online   bool   `json:"online"`
			Host     string `json:"host,omitempty"`
			Cwd      string `json:"cwd,omitempty"`
			LastSeen string `json:"lastSeen"`
		}
		list := make([]session, len(f.Sessions))
		for i, s := range f.Sessions {
			list[i] = session{ClientID: s.ID, Online: s.Online, Host: s.Host, Cwd: s.Cwd, LastSeen: s.LastSeen.UTC().Format(time.RFC3339Nano)}
		}
		v = struct {
			Type     string    `json:"type"`
			Sessions []session `json:"sessions"`
			Self     string    `json:"self"`
		}{"sessions", list, self}
	case *protocol.History:
		msgs := make([]legacyMessage, len(f.Messages))
		for i := range f.Messages {
			msgs[i] = toLegacy(&f.Messages[i])
		}
		v = struct {
			Type     string          `json:"type"`
			Messages []legacyMessage `json:"messages"`
		}{"history", msgs}
	case *protocol.Cleared:
		v = struct {
			Type    string `json:"type"`
			Cleared int    `json:"cleared"`
		}{"history_cleared", f.Cleared}
	case *protocol.Presence:
		if f.Event == protocol.PresenceStatus {
			return dst, false, nil // the older protocol has no status
		}
		typ := "peer_joined"
		c.peers[f.Peer.ID] = true
		if f.Event == protocol.PresenceLeft {
			typ = "peer_left"
			delete(c.peers, f.Peer.ID)
		}
		v = struct {
			Type     string   `json:"type"`
			ClientID string   `json:"clientId"`
			Peers    peerList `json:"peers"`
		}{typ, f.Peer.ID, c.peerList()}
	case *protocol.Message:
		return appendMessage(slices.Grow(dst, messageSize(f)), f), true, nil
	case *Pong:
		v = struct {
			Type      string `json:"type"`
			Timestamp int64  `json:"timestamp"`
		}{"pong", f.At.UnixMilli()}
	case *protocol.Accepted:
		var unknown []string
		for _, o := range f.Recipients {
			if o.Status == protocol.StatusUnknown || o.Status == protocol.StatusFull {
				unknown = append(unknown, o.ID+" ("+o.Status+")")
			}
		}
		if len(unknown) == 0 {
			return dst, false, nil
		}
		v = errorFrame("message not delivered to " + strings.Join(unknown, ", "))
	case *protocol.ErrorFrame:
		if f.Code == protocol.CodeHelloRequired {
			// The server's words are for v1 clients, whose first frame is hello.
			v = errorFrame(`the first frame must be register {"type":"register","clientId":"…"}`)
			break
		}
		v = errorFrame(f.Message)
	default:
		return dst, false, nil
	}
	// JSON.stringify, as the older relay wrote, leaves <, > and & as they
	// are; json.Marshal would write them as \u003c and so on.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dst, false, err
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), true, nil
}

type legacyError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func errorFrame(msg string) legacyError { return legacyError{Type: "error", Message: msg} }
