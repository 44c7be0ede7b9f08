package protocol

import "strings"

// Frames for status lines and wake-ups: a session's self-declared current
// task (status), and content-free "mail exists" events for a watcher that
// wakes an idle agent (watch, mail).
//
//	client                                        relay
//	  |--- status {ref, status} -------------------->|  "working on the auth refactor"
//	  |<-- status {ref, status} ---------------------|  (echo: it is set)
//	  |<-- presence {event: status, peer} -----------|  (to everyone else; peer.status)
//	  |--- watch {ref, ids} ------------------------>|  ids the connection's token may claim
//	  |<-- watch {ref, ids} -------------------------|  (echo: subscribed)
//	  |<-- mail {for, count, seq} -------------------|  at once if mail waits, then at every new message
const (
	TypeStatus = "status" // both ways: set the current task, then its echo
	TypeWatch  = "watch"  // both ways: subscribe to mail events, then its echo
	TypeMail   = "mail"   // relay → client: mail exists for a watched id
)

// PresenceStatus is the presence event of a peer that changed its status.
const PresenceStatus = "status"

// MaxStatusBytes bounds a status line.
const MaxStatusBytes = 256

// MaxWatchIDs is the most ids one watch frame may name.
const MaxWatchIDs = 64

// Status sets (client → relay) or confirms (relay → client) what this
// session says it is doing, one line shown to peers in Peer.Status. An
// empty Status clears it. It lasts while the connection does; a client
// that reconnects repeats it in Hello.Status.
type Status struct {
	Ref    string `json:"ref,omitempty"`
	Status string `json:"status"`
}

// Watch subscribes the connection to Mail events for IDs (client → relay),
// replacing any earlier watch of the connection; the relay answers with the
// same frame. Only ids the connection's token may claim can be watched: a
// watcher learns that mail exists, never what it says.
type Watch struct {
	Ref string   `json:"ref,omitempty"`
	IDs []string `json:"ids"`
}

// Mail tells a watcher that For's mailbox holds Count unacked messages, the
// newest with Seq. It carries no content: the agent reads its mail itself.
type Mail struct {
	For   string `json:"for"`
	Count int    `json:"count"`
	Seq   uint64 `json:"seq"`
	// Online reports that For is connected now (its client has the mail
	// already; a waker may leave it be).
	Online bool `json:"online,omitempty"`
}

func (*Status) Type() string { return TypeStatus }
func (*Watch) Type() string  { return TypeWatch }
func (*Mail) Type() string   { return TypeMail }

func (f *Status) validate(Limits) error {
	if len(f.Status) > MaxStatusBytes {
		return errorf(CodeTooLarge, "status is %d bytes; the limit is %d — one line of what you are doing", len(f.Status), MaxStatusBytes)
	}
	return checkStatusLine(f.Status)
}

func checkStatusLine(s string) error {
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errorf(CodeBadField, "status must be one line without control characters")
	}
	return nil
}

func (f *Watch) validate(Limits) error {
	if len(f.IDs) == 0 {
		return missing(TypeWatch, "ids")
	}
	if len(f.IDs) > MaxWatchIDs {
		return errorf(CodeTooLarge, "watch names %d ids; the limit is %d", len(f.IDs), MaxWatchIDs)
	}
	for _, id := range f.IDs {
		if err := ValidateID(id); err != nil {
			return err
		}
	}
	return nil
}

func (f *Mail) validate(Limits) error {
	if f.For == "" {
		return missing(TypeMail, "for")
	}
	return nil
}
