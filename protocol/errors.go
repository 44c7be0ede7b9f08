package protocol

import "fmt"

// Code classifies an error frame. Codes are stable strings: clients may
// switch on them; the message beside them is for people.
type Code string

// Error codes sent in error frames.
const (
	CodeBadJSON          Code = "bad_json"          // the frame is not a JSON object
	CodeUnknownType      Code = "unknown_type"      // "type" names no frame of this protocol
	CodeMissingField     Code = "missing_field"     // a required field is absent or empty
	CodeBadField         Code = "bad_field"         // a field has a value that is not allowed
	CodeBadID            Code = "bad_id"            // an id does not follow the id syntax
	CodeTooLarge         Code = "too_large"         // the frame or body exceeds the limits
	CodeHelloRequired    Code = "hello_required"    // a frame other than hello came first
	CodeAlreadyHello     Code = "already_hello"     // a second hello on one connection
	CodeUnsupportedProto Code = "unsupported_proto" // hello.proto is not spoken by the relay
	CodeUnexpected       Code = "unexpected_frame"  // a relay-to-client frame sent by a client
	CodeRateLimited      Code = "rate_limited"      // too many frames; retry after retry_after_ms
	CodeForbidden        Code = "forbidden"         // the credentials may not do this
	CodeIDInUse          Code = "id_in_use"         // hello.no_takeover and the id is online
	CodeStoreUnavailable Code = "store_unavailable" // the relay cannot store messages right now
	CodeStoreFull        Code = "store_full"        // the relay's store reached its size limit; nothing was stored
	CodeInternal         Code = "internal"          // a relay bug; the message says no more
)

// Error is a protocol error: what was wrong with a frame, phrased for the
// person or program that sent it. Decode returns it; the relay sends it back
// as an error frame.
type Error struct {
	Code    Code
	Message string
	// Ref is the ref of the request that failed, when it could be read.
	Ref string
	// RetryAfterMS, for CodeRateLimited, is when the request may succeed.
	RetryAfterMS int64
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Frame converts the error to the error frame a relay sends.
func (e *Error) Frame() *ErrorFrame {
	return &ErrorFrame{Code: e.Code, Message: e.Message, Ref: e.Ref, RetryAfterMS: e.RetryAfterMS}
}

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WebSocket close codes used by the relay. Codes 4000-4499 mean the client
// should reconnect (with backoff); 4500-4999 mean it must stop and tell its
// user. 4409 is the exception kept from HTTP's "conflict": the id is now used
// by a newer connection, and reconnecting would only take it back (flapping).
const (
	CloseNormal       = 1000 // client or relay finished normally
	CloseGoingAway    = 1001 // relay shutting down: reconnect later
	ClosePolicy       = 1008 // input that makes the connection unusable
	CloseTooBig       = 1009 // a frame beyond the relay's frame limit
	CloseHelloTimeout = 4000 // no hello within the deadline: reconnect
	CloseSlowConsumer = 4008 // the client did not drain its queue; its mail waits
	CloseIdle         = 4010 // keepalive failed: the peer stopped answering
	CloseReplaced     = 4409 // a newer connection took this client id: do not reconnect
	CloseUnauthorized = 4501 // token missing or wrong: do not reconnect
	CloseForbiddenID  = 4503 // the token may not claim this id: do not reconnect
	CloseBadHello     = 4500 // hello can never succeed (unsupported proto): do not reconnect
	CloseIDInUse      = 4509 // hello.no_takeover and the id is online: do not reconnect
)

// ShouldReconnect reports whether a client closed with code should try to
// connect again (after a backoff). Unknown codes reconnect: a network fault
// must not leave an agent offline for good.
func ShouldReconnect(code int) bool {
	switch code {
	case CloseReplaced, CloseUnauthorized, CloseForbiddenID, CloseBadHello, CloseIDInUse:
		return false
	}
	return code < 4500 || code > 4999
}

// CloseReason returns the human explanation of a close code, for logs and
// status output.
func CloseReason(code int) string {
	switch code {
	case CloseNormal:
		return "closed normally"
	case CloseGoingAway:
		return "relay is shutting down"
	case ClosePolicy:
		return "relay refused unusable input"
	case CloseTooBig:
		return "frame too large"
	case CloseHelloTimeout:
		return "no hello within the deadline"
	case CloseSlowConsumer:
		return "client too slow to drain its queue; its messages wait in the mailbox"
	case CloseIdle:
		return "keepalive failed"
	case CloseReplaced:
		return "replaced by a newer connection with the same client id"
	case CloseUnauthorized:
		return "token missing or not accepted"
	case CloseForbiddenID:
		return "token may not claim this client id"
	case CloseBadHello:
		return "hello refused"
	case CloseIDInUse:
		return "client id is online elsewhere and takeover was not asked for"
	}
	return fmt.Sprintf("close code %d", code)
}
