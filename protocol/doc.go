// Package protocol is the wire contract between relayd and its clients
// (relay-mcp, the chat client, anything else that speaks protocol v1).
// It holds the frame types, their validation, the error and close codes and
// the limits, and nothing else: no I/O, no dependencies beyond the standard
// library, so another client can be written from this package and
// docs/protocol.md alone.
//
// # Transport
//
// Frames are JSON objects sent as WebSocket text messages on the relay's
// /v1/ws endpoint, one frame per message. Every frame has a "type" field that
// names it; unknown fields are ignored (so newer peers can add fields), but
// unknown types, missing required fields, bad ids and oversized frames are
// rejected by [Decode] with a [*Error] that carries a [Code].
//
// # Protocol flow
//
//	client                                        relay
//	  |  (WebSocket upgrade, optional Bearer token)  |
//	  |--- hello {proto, client_id, resume_after} -->|  first frame, within 10 s
//	  |<-- welcome {server, client_id, peers} -------|  (replaced: the host/pid it displaced)
//	  |<-- message {seq, id, from, body} ... --------|  mail held for the client after resume_after
//	  |--- send {ref, to, body} -------------------->|
//	  |<-- accepted {ref, id, recipients} -----------|  per recipient: delivered / queued / unknown
//	  |<-- message {seq, id, from, to, body, ts} ----|  (to the recipients)
//	  |--- ack {upto} ------------------------------>|  the client holds every seq <= upto
//	  |--- peers | sessions | history {ref} -------->|
//	  |<-- peers | sessions | history {ref, ...} ----|
//	  |<-- presence {event: joined|left, peer} ------|  whenever someone comes or goes
//	  |<-- error {code, message, ref} ---------------|  a request was refused; the connection stays up
//
// The relay stamps "from" with the connection's authenticated id: a client
// cannot forge it. Message ids are assigned by the relay and are time ordered
// (UUIDv7). Each recipient has its own strictly increasing seq; a client that
// reconnects says the last seq it holds in hello.resume_after and receives
// everything after it again, so delivery is at-least-once on the wire and
// a client deduplicates by message id.
//
// When the same client id connects twice, the newer connection takes over and
// the older one is closed with [CloseReplaced] (4409). A client closed with a
// code for which [ShouldReconnect] is false must not reconnect on its own.
package protocol

// Version is the protocol version spoken by this package. A client sends it in
// hello.proto; the relay refuses a hello whose proto it does not speak.
const Version = 1

// Limits bound what a decoder accepts.
type Limits struct {
	// MaxFrameBytes is the largest encoded frame accepted. Defaults to
	// DefaultMaxFrameBytes.
	MaxFrameBytes int
	// MaxBodyBytes is the largest message body (in bytes of UTF-8) accepted
	// in a send frame. Defaults to DefaultMaxBodyBytes.
	MaxBodyBytes int
}

const (
	// DefaultMaxBodyBytes is the default limit on a message body: 1 MiB.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxFrameBytes leaves room for a body of DefaultMaxBodyBytes that
	// needs JSON escaping plus the frame's other fields.
	DefaultMaxFrameBytes = 2*DefaultMaxBodyBytes + 64<<10
	// MaxRecipients is the most ids one send frame may name.
	MaxRecipients = 256
	// MaxThreadBytes bounds a thread name.
	MaxThreadBytes = 128
	// MaxMetaBytes bounds free-text hello fields (host, cwd, agent, label).
	MaxMetaBytes = 1024
	// MaxHistoryLimit is the most messages one history request returns.
	MaxHistoryLimit = 1000
	// MaxHistoryBytes bounds the bodies of one history page: a page stops
	// before the message that would take it past this (it always holds at
	// least one) and says more. A page of large messages is then about
	// the size of one large message, which any client reads, whatever
	// limit was asked for.
	MaxHistoryBytes = 1 << 20
	// RefWindow is how many recent send refs per client the relay
	// remembers to answer a retried send without sending it twice.
	RefWindow = 1024
)

// DefaultLimits are the limits used by [Decode].
var DefaultLimits = Limits{MaxFrameBytes: DefaultMaxFrameBytes, MaxBodyBytes: DefaultMaxBodyBytes}

func (l Limits) withDefaults() Limits {
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return l
}
