package protocol

import (
	"encoding/json"
	"time"
)

// Frame type names, the value of every frame's "type" field.
const (
	TypeHello    = "hello"    // client → relay, first frame
	TypeWelcome  = "welcome"  // relay → client, answer to hello
	TypeSend     = "send"     // client → relay
	TypeAccepted = "accepted" // relay → client, answer to send
	TypeMessage  = "message"  // relay → client, one delivered message
	TypeAck      = "ack"      // client → relay: held; relay → client: committed (provisional clients)
	TypePresence = "presence" // relay → client, someone joined or left
	TypePeers    = "peers"    // both ways: request, then the list
	TypeSessions = "sessions" // both ways: request, then the list
	TypeHistory  = "history"  // both ways: request, then a page of messages
	TypeClear    = "clear"    // client → relay: forget read history
	TypeCleared  = "cleared"  // relay → client, answer to clear
	TypeHeld     = "held"     // relay → client, a notice: the operator held (or released) a pair the client is in
	TypeError    = "error"    // relay → client
)

// frameTypes is the one place a frame type is declared: decoding, ref
// matching ([RefOf]), [ClientFrame], the unknown-type error and the checks
// of docs/protocol.md's frame reference (docs_test.go) follow it (see
// table.go). Adding a frame is its name above, one line here, and its
// struct with Type and validate methods; its order here is the order of
// docs/protocol.md's frame table.
var frameTypes = []FrameType{
	{Name: TypeHello, Dir: FromClient, Answer: TypeWelcome, New: newOf[Hello]},
	{Name: TypeWelcome, Dir: FromRelay, New: newOf[Welcome]},
	{Name: TypeSend, Dir: FromClient, Answer: TypeAccepted, New: newOf[Send]},
	{Name: TypeAccepted, Dir: FromRelay, New: newOf[Accepted]},
	{Name: TypeMessage, Dir: FromRelay, New: newOf[Message]},
	{Name: TypeAck, Dir: Both, New: newOf[Ack]}, // relay → client: commits, to a provisional client
	{Name: TypePresence, Dir: FromRelay, New: newOf[Presence]},
	{Name: TypePeers, Dir: Both, Answer: TypePeers, New: newOf[Peers]},
	{Name: TypeSessions, Dir: Both, Answer: TypeSessions, New: newOf[Sessions]},
	{Name: TypeHistory, Dir: Both, Answer: TypeHistory, New: newOf[History]},
	{Name: TypeClear, Dir: FromClient, Answer: TypeCleared, New: newOf[Clear]},
	{Name: TypeCleared, Dir: FromRelay, New: newOf[Cleared]},
	{Name: TypeRead, Dir: FromClient, New: newOf[Read]},
	{Name: TypeReceipts, Dir: Both, Answer: TypeReceipts, New: newOf[Receipts]},
	{Name: TypeStatus, Dir: Both, Answer: TypeStatus, New: newOf[Status]},
	{Name: TypeWatch, Dir: Both, Answer: TypeWatch, New: newOf[Watch]},
	{Name: TypeMail, Dir: FromRelay, New: newOf[Mail]},
	{Name: TypeHeld, Dir: FromRelay, New: newOf[Held]},
	{Name: TypeError, Dir: FromRelay, New: newOf[ErrorFrame]},
}

// Frame is any frame of protocol v1. Its Type method gives the frame's
// "type" field; [Encode] writes it, [Decode] reads it.
type Frame interface {
	Type() string
	// validate checks required fields and limits after decoding.
	validate(l Limits) error
}

// Hello opens a session. It must be the first frame on a connection.
//
//	{"type":"hello","proto":1,"client_id":"CC-1","host":"mbp","pid":4242,
//	 "cwd":"/src/app","agent":"claude-code","label":"auth refactor","resume_after":17}
type Hello struct {
	Proto    int    `json:"proto"`           // required: protocol version, 1
	ClientID string `json:"client_id"`       // required: the id this connection claims
	Host     string `json:"host,omitempty"`  // machine name, for people
	PID      int    `json:"pid,omitempty"`   // the client's process id, for people
	Cwd      string `json:"cwd,omitempty"`   // the agent's working directory
	Agent    string `json:"agent,omitempty"` // claude-code, codex, gemini, cursor …
	Label    string `json:"label,omitempty"` // free text: what this session is for
	// ResumeAfter is the highest seq the client holds. The relay sends every
	// message of the client's mailbox after it. 0 means "everything held".
	ResumeAfter uint64 `json:"resume_after,omitempty"`
	// Quiet asks the relay not to push presence to this client and to
	// leave the peer list out of welcome (it can still ask with peers).
	// For scripts and load tools that only send; agents leave it unset.
	Quiet bool `json:"quiet,omitempty"`
	// NoTakeover asks the relay to refuse this connection (CodeIDInUse,
	// CloseIDInUse) instead of replacing a live connection with the same
	// id: for one-shot tools that act as an agent's id without knocking
	// the agent offline.
	NoTakeover bool `json:"no_takeover,omitempty"`
	// Status is the session's current task (see [Status]), repeated on
	// every reconnect so peers keep seeing it.
	Status string `json:"status,omitempty"`
	// Provisional says the client can hold messages the relay has not
	// committed yet: the relay then writes a message to it as soon as it
	// is sent, marked provisional, while its store commits it, and
	// confirms the commit with an ack frame (relay → client) whose upto
	// covers its seq. A client that says so keeps provisional messages
	// apart, takes them as received only once an ack covers them, never
	// acks or resumes past a seq no ack from the relay covered, and drops
	// the unconfirmed ones when the connection ends (the relay sends them
	// again if they were committed). Without it a client gets only
	// committed messages.
	Provisional bool `json:"provisional,omitempty"`
}

// Welcome answers hello: the session is open.
type Welcome struct {
	Server   string `json:"server"`    // relay version, e.g. "relayd 0.1.0"
	Proto    int    `json:"proto"`     // protocol version in use
	ClientID string `json:"client_id"` // the id the relay knows this connection by
	Peers    []Peer `json:"peers"`     // everyone online, this client included
	// Replaced describes the connection this one took over, when the id was
	// already connected (that connection was closed with CloseReplaced).
	Replaced *Replaced `json:"replaced,omitempty"`
	// HeartbeatMS is the relay's ping interval; a client silent for two
	// intervals is dropped.
	HeartbeatMS int64 `json:"heartbeat_ms,omitempty"`
	// Backlog is how many held messages follow welcome at once (those after
	// resume_after): a client can tell when it has caught up.
	Backlog int `json:"backlog"`
	// LastSeq is the highest seq this client's mailbox has issued. A
	// client holding a higher seq is holding numbers from a mailbox the
	// relay no longer has (its store was reset): it must resume from 0
	// next time and rely on message ids to drop duplicates.
	LastSeq uint64 `json:"last_seq"`
}

// Replaced names a connection that a newer one took over.
type Replaced struct {
	Host string `json:"host,omitempty"`
	PID  int    `json:"pid,omitempty"`
}

// Recipients is the "to" of a send: a list of client ids, or Broadcast.
// On the wire it is either an array of ids or the string "*"; a single id as
// a string is accepted too.
type Recipients []string

// UnmarshalJSON accepts "*", "ID" or ["ID", …].
func (r *Recipients) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*r = Recipients{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errorf(CodeBadField, `"to" must be "*", an id, or a list of ids`)
	}
	*r = many
	return nil
}

// MarshalJSON writes Broadcast as "*" and anything else as a list.
func (r Recipients) MarshalJSON() ([]byte, error) {
	if r.IsBroadcast() {
		return []byte(`"*"`), nil
	}
	return json.Marshal([]string(r))
}

// IsBroadcast reports whether r means everyone online.
func (r Recipients) IsBroadcast() bool { return len(r) == 1 && r[0] == Broadcast }

// Send asks the relay to deliver a message. Ref makes a retry safe: a
// client that resends a send whose accepted it never saw (its connection
// dropped) with the same ref and the same content gets the original
// accepted back and the message is not delivered twice, as long as the ref
// is among the client's last RefWindow refs since the relay started. A ref
// reused for different content is a new message.
type Send struct {
	Ref     string     `json:"ref"`                // required: unique per client, echoed in accepted/error
	To      Recipients `json:"to"`                 // required
	Body    string     `json:"body"`               // required, at most Limits.MaxBodyBytes
	ReplyTo string     `json:"reply_to,omitempty"` // id of the message this answers
	Thread  string     `json:"thread,omitempty"`   // conversation name
	// QueueIfUnknown asks the relay to queue the message for an id it has
	// never seen, instead of answering "unknown".
	QueueIfUnknown bool `json:"queue_if_unknown,omitempty"`
}

// Delivery outcomes reported per recipient in Accepted.
const (
	StatusDelivered = "delivered" // pushed to the recipient's open connection
	StatusQueued    = "queued"    // stored; delivered when the recipient connects
	StatusUnknown   = "unknown"   // no such id has ever connected; not stored
	StatusFull      = "full"      // the recipient's mailbox is full; not stored
)

// Accepted answers send: the relay has taken the message.
type Accepted struct {
	Ref        string    `json:"ref"`
	ID         string    `json:"id"` // the message id the relay assigned
	TS         time.Time `json:"ts"`
	Recipients []Outcome `json:"recipients"` // one per recipient, in the order of "to"
	// Warning, when set, says the sender's exchange with a recipient looks
	// like a loop (many messages, fast, mostly replies). The message was
	// sent all the same; a client shows the warning to whoever decides
	// whether to go on.
	Warning string `json:"warning,omitempty"`
}

// Outcome is what became of a message for one recipient.
type Outcome struct {
	ID     string `json:"id"`     // recipient client id
	Status string `json:"status"` // StatusDelivered, StatusQueued, StatusUnknown, StatusFull
}

// Message is one message delivered to a client.
type Message struct {
	Seq     uint64    `json:"seq"` // per recipient, strictly increasing; 0 in history pages
	ID      string    `json:"id"`
	From    string    `json:"from"` // stamped by the relay
	To      []string  `json:"to"`   // the recipients as sent ("*" for a broadcast)
	Body    string    `json:"body"`
	TS      time.Time `json:"ts"`
	ReplyTo string    `json:"reply_to,omitempty"`
	Thread  string    `json:"thread,omitempty"`
	// Person is set by the relay when the sender is a person (the relay's
	// operator at its console, an id starting with PersonPrefix), not an
	// agent.
	Person bool `json:"person,omitempty"`
	// Provisional marks a message written before the relay committed it,
	// to a client that said hello with provisional: it is not the
	// client's until an ack from the relay covers its seq.
	Provisional bool `json:"provisional,omitempty"`
}

// Ack tells the relay the client holds every message up to seq Upto; the
// relay will not resend them. From the relay to a client that said hello
// with provisional, it says the relay has committed every message of the
// client's mailbox up to seq Upto: the provisional ones it covers are the
// client's now.
type Ack struct {
	Upto uint64 `json:"upto"` // required, at least 1
}

// Presence events.
const (
	PresenceJoined = "joined"
	PresenceLeft   = "left"
)

// Presence tells everyone that a peer came online or went away.
type Presence struct {
	Event string `json:"event"` // PresenceJoined or PresenceLeft
	Peer  Peer   `json:"peer"`
	// Reason says why a peer left (closed, replaced, idle …), for people.
	Reason string `json:"reason,omitempty"`
}

// Peer is a client online now.
type Peer struct {
	ID             string    `json:"id"`
	Host           string    `json:"host,omitempty"`
	PID            int       `json:"pid,omitempty"`
	Cwd            string    `json:"cwd,omitempty"`
	Agent          string    `json:"agent,omitempty"`
	Label          string    `json:"label,omitempty"`
	ConnectedSince time.Time `json:"connected_since"`
	LastSeen       time.Time `json:"last_seen"`
	// Legacy marks a client of the older Node relay protocol.
	Legacy bool `json:"legacy,omitempty"`
	// Status is what the peer says it is doing now (a [Status] frame).
	Status string `json:"status,omitempty"`
	// Unread counts the messages in the peer's mailbox not yet shown to
	// its model; LastRead is when it last reported reading (see Read).
	Unread   int       `json:"unread,omitempty"`
	LastRead time.Time `json:"last_read,omitzero"`
}

// Peers asks for (client → relay, Ref only) or carries (relay → client) the
// list of peers online.
type Peers struct {
	Ref   string `json:"ref,omitempty"`
	Peers []Peer `json:"peers,omitempty"`
}

// Session is a client id the relay knows, online or not.
type Session struct {
	ID        string    `json:"id"`
	Online    bool      `json:"online"`
	Host      string    `json:"host,omitempty"`
	PID       int       `json:"pid,omitempty"`
	Cwd       string    `json:"cwd,omitempty"`
	Agent     string    `json:"agent,omitempty"`
	Label     string    `json:"label,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Queued    int       `json:"queued,omitempty"` // messages waiting in its mailbox
}

// Sessions asks for (Ref only) or carries the sessions the relay knows.
type Sessions struct {
	Ref      string    `json:"ref,omitempty"`
	Sessions []Session `json:"sessions,omitempty"`
}

// History asks for (client → relay) or carries (relay → client) a page of
// past messages the client may see: those to it, its own sends and
// broadcasts. With narrows to the conversation with one peer; Before/After
// are message ids bounding the page; Limit defaults to 50.
type History struct {
	Ref      string    `json:"ref,omitempty"`
	With     string    `json:"with,omitempty"`
	Thread   string    `json:"thread,omitempty"` // only this thread (a conversation), when set
	Before   string    `json:"before,omitempty"`
	After    string    `json:"after,omitempty"`
	Limit    int       `json:"limit,omitempty"`
	Messages []Message `json:"messages,omitempty"` // oldest first
	More     bool      `json:"more,omitempty"`     // older messages exist beyond this page
}

// Clear asks the relay to forget the client's read history: messages it has
// acked. With IncludeUnread the unread ones are dropped too.
type Clear struct {
	Ref           string `json:"ref,omitempty"`
	IncludeUnread bool   `json:"include_unread,omitempty"`
}

// Cleared answers clear.
type Cleared struct {
	Ref     string `json:"ref,omitempty"`
	Cleared int    `json:"cleared"` // messages forgotten
}

// ErrorFrame reports a refused request. Ref is the request's ref when it
// could be read.
type ErrorFrame struct {
	Ref     string `json:"ref,omitempty"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// RetryAfterMS tells a rate-limited client when to try again.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

func (*Hello) Type() string      { return TypeHello }
func (*Welcome) Type() string    { return TypeWelcome }
func (*Send) Type() string       { return TypeSend }
func (*Accepted) Type() string   { return TypeAccepted }
func (*Message) Type() string    { return TypeMessage }
func (*Ack) Type() string        { return TypeAck }
func (*Presence) Type() string   { return TypePresence }
func (*Peers) Type() string      { return TypePeers }
func (*Sessions) Type() string   { return TypeSessions }
func (*History) Type() string    { return TypeHistory }
func (*Clear) Type() string      { return TypeClear }
func (*Cleared) Type() string    { return TypeCleared }
func (*ErrorFrame) Type() string { return TypeError }

// Held tells a client that the relay's operator put the pair it is in on
// hold — the relay refuses every message between it and Peer, both ways —
// or, with On false, released it. A [Notice]: relay-mcp shows it in
// relay_status and relay_send's result until the release, and a client
// connecting while the hold stands is told at once.
//
//	{"type":"held","peer":"CC-2","on":true,"message":"the relay's operator put you and CC-2 on hold …"}
type Held struct {
	Peer    string `json:"peer"`              // required: the other one of the pair
	On      bool   `json:"on,omitempty"`      // the hold stands; false: released
	Message string `json:"message,omitempty"` // what it means and what to do, for the agent
}

func (*Held) Type() string { return TypeHeld }

func (f *Held) validate(Limits) error {
	if f.Peer == "" {
		return missing(TypeHeld, "peer")
	}
	return nil
}

func (f *Held) NoticeSubject() string { return TypeHeld + " " + f.Peer }

func (f *Held) NoticeText() string {
	if !f.On {
		return ""
	}
	return f.Message
}
