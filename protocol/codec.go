package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Encode returns the JSON of f with its "type" field first.
func Encode(f Frame) ([]byte, error) {
	if b, ok := appendFast(make([]byte, 0, fastSize(f)), f); ok {
		return b, nil
	}
	return encodeJSON(f)
}

// AppendEncode appends f as Encode renders it to dst and returns the
// extended buffer: a relay that writes a frame and then reuses its buffer
// allocates nothing per frame. On an error dst is returned as it was.
func AppendEncode(dst []byte, f Frame) ([]byte, error) {
	n := len(dst)
	if b, ok := appendFast(dst, f); ok {
		return b, nil
	}
	b, err := encodeJSON(f)
	if err != nil {
		return dst[:n], err
	}
	return append(dst[:n], b...), nil
}

// encodeJSON is Encode through encoding/json, for every frame.
func encodeJSON(f Frame) ([]byte, error) {
	body, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode %s frame: %w", f.Type(), err)
	}
	typ := f.Type()
	out := make([]byte, 0, len(body)+len(typ)+12)
	out = append(out, `{"type":"`...)
	out = append(out, typ...)
	out = append(out, '"')
	if len(body) > 2 { // more than "{}"
		out = append(out, ',')
	}
	return append(out, body[1:]...), nil
}

// Decode parses one frame with DefaultLimits. See [Limits.Decode].
func Decode(data []byte) (Frame, error) { return DefaultLimits.Decode(data) }

// Decode parses one frame and validates it. Every failure is an [*Error]
// whose Code says what was wrong and whose Ref is the frame's ref when it
// could be read, so a relay can answer the request that failed.
func (l Limits) Decode(data []byte) (Frame, error) { return l.decode(data, true) }

// decode is Decode; fast false turns the single-pass parser of sends and
// acks off, for the tests that compare it with encoding/json.
func (l Limits) decode(data []byte, fast bool) (Frame, error) {
	l = l.withDefaults()
	if len(data) > l.MaxFrameBytes {
		return nil, errorf(CodeTooLarge, "frame is %d bytes; the limit is %d", len(data), l.MaxFrameBytes)
	}
	if !utf8.Valid(data) {
		return nil, errorf(CodeBadJSON, "frame is not valid UTF-8")
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errorf(CodeBadJSON, "frame must be a JSON object like {\"type\":\"send\",…}")
	}
	// Fast path: frames that start with their type (as Encode writes them)
	// are parsed once. Others are read twice: type first, then the frame.
	if t, ok := leadingType(trimmed); ok {
		f := t.New()
		if ff, ok := f.(fastFrame); ok && fast {
			if decodeFast(ff, data) {
				return l.validated(f, "")
			}
			f = t.New() // the fast parser may have filled some fields
		}
		return l.decodeAs(f, data, "")
	}
	var head struct {
		Type *string `json:"type"`
		Ref  any     `json:"ref"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, errorf(CodeBadJSON, "frame is not valid JSON: %s", jsonProblem(err))
	}
	ref, _ := head.Ref.(string)
	if head.Type == nil || *head.Type == "" {
		return nil, &Error{Code: CodeMissingField, Message: `frame has no "type"`, Ref: ref}
	}
	f := newFrame(*head.Type)
	if f == nil {
		return nil, &Error{Code: CodeUnknownType, Message: fmt.Sprintf("unknown frame type %q; protocol v%d has %s", truncate(*head.Type, 32), Version, strings.Join(allTypes, ", ")), Ref: ref}
	}
	return l.decodeAs(f, data, ref)
}

// decodeAs parses data into f and validates it. ref is the frame's ref if
// already known; otherwise it is read from f when it has one.
func (l Limits) decodeAs(f Frame, data []byte, ref string) (Frame, error) {
	if err := json.Unmarshal(data, f); err != nil {
		var pe *Error
		var syn *json.SyntaxError
		switch {
		case asError(err, &pe):
		case errors.As(err, &syn):
			pe = &Error{Code: CodeBadJSON, Message: "frame is not valid JSON: " + jsonProblem(err)}
		default:
			pe = &Error{Code: CodeBadField, Message: fmt.Sprintf("%s frame: %s", f.Type(), jsonProblem(err))}
		}
		if ref == "" {
			ref = RefOf(f)
		}
		if ref == "" {
			ref = readRef(data)
		}
		pe.Ref = ref
		return nil, pe
	}
	return l.validated(f, ref)
}

// Validate checks f as a relay decoding it with DefaultLimits would: nil,
// or the [*Error] the relay would answer with. A client checks what it is
// about to send (a status line, a hello's metadata) so that a value the
// relay refuses is refused where it was given, not on every reconnect.
func Validate(f Frame) error {
	if err := f.validate(DefaultLimits); err != nil {
		return err
	}
	return nil
}

// Validate checks f as Decode with these limits checks a decoded frame:
// nil, or the [*Error] with the frame's ref. A relay that builds frames
// from another wire format (the older protocol) checks them with it.
func (l Limits) Validate(f Frame) error {
	_, err := l.withDefaults().validated(f, "")
	return err
}

// validated returns f if it passes its checks, or the check's error with
// the frame's ref.
func (l Limits) validated(f Frame, ref string) (Frame, error) {
	if err := f.validate(l); err != nil {
		pe := err.(*Error)
		if ref == "" {
			ref = RefOf(f)
		}
		pe.Ref = ref
		return nil, pe
	}
	return f, nil
}

// leadingType returns the frame type of a frame that starts
// {"type":"NAME", with NAME a known type.
func leadingType(b []byte) (*FrameType, bool) {
	const prefix = `{"type":"`
	if !bytes.HasPrefix(b, []byte(prefix)) {
		return nil, false
	}
	rest := b[len(prefix):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return nil, false
	}
	t := byName[string(rest[:end])] // looked up without a copy
	return t, t != nil
}

// readRef reads a frame's ref for an error reply when the frame itself
// could not be decoded.
func readRef(data []byte) string {
	var head struct {
		Ref any `json:"ref"`
	}
	json.Unmarshal(data, &head)
	ref, _ := head.Ref.(string)
	return ref
}

// asError unwraps a *Error returned from a custom UnmarshalJSON.
func asError(err error, target **Error) bool {
	for err != nil {
		if e, ok := err.(*Error); ok {
			*target = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// jsonProblem phrases an encoding/json error without Go type names.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		if e.Field != "" {
			return fmt.Sprintf("field %q must be a %s, not a %s", e.Field, jsonKind(e.Type.Kind().String()), e.Value)
		}
		return fmt.Sprintf("expected a %s, got a %s", jsonKind(e.Type.Kind().String()), e.Value)
	}
	return err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "int", "int64", "uint64", "uint", "int32":
		return "whole number"
	case "bool":
		return "boolean"
	case "slice":
		return "list"
	case "struct", "map", "ptr":
		return "object"
	}
	return goKind
}

func missing(typ, field string) error {
	return errorf(CodeMissingField, "%s frame needs %q", typ, field)
}

func checkMeta(typ, field, v string) error {
	if len(v) > MaxMetaBytes {
		return errorf(CodeTooLarge, "%s.%s is %d bytes; the limit is %d", typ, field, len(v), MaxMetaBytes)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return errorf(CodeBadField, "%s.%s contains a NUL byte", typ, field)
	}
	return nil
}

func checkThread(typ, thread string) error {
	if len(thread) > MaxThreadBytes {
		return errorf(CodeTooLarge, "%s.thread is %d bytes; the limit is %d", typ, len(thread), MaxThreadBytes)
	}
	for _, r := range thread {
		if r < 0x20 || r == 0x7f {
			return errorf(CodeBadField, "%s.thread contains a control character", typ)
		}
	}
	return nil
}

func (f *Hello) validate(Limits) error {
	if f.Proto == 0 {
		return missing(TypeHello, "proto")
	}
	if f.ClientID == "" {
		return missing(TypeHello, "client_id")
	}
	if err := ValidateID(f.ClientID); err != nil {
		return err
	}
	if IsPersonID(f.ClientID) {
		return errorf(CodeBadID, "id %q starts with %q, which is kept for the relay's operators (people posting from its console); pick another id", f.ClientID, PersonPrefix)
	}
	for _, m := range [][2]string{{"host", f.Host}, {"cwd", f.Cwd}, {"agent", f.Agent}, {"label", f.Label}} {
		if err := checkMeta(TypeHello, m[0], m[1]); err != nil {
			return err
		}
	}
	if f.PID < 0 {
		return errorf(CodeBadField, "hello.pid must not be negative")
	}
	if err := (&Status{Status: f.Status}).validate(Limits{}); err != nil {
		return err
	}
	return nil
}

func (f *Welcome) validate(Limits) error {
	if f.ClientID == "" {
		return missing(TypeWelcome, "client_id")
	}
	return ValidateID(f.ClientID)
}

func (f *Send) validate(l Limits) error {
	if f.Ref == "" {
		return missing(TypeSend, "ref")
	}
	if len(f.Ref) > MaxIDLen {
		return errorf(CodeBadField, "send.ref is longer than %d bytes", MaxIDLen)
	}
	if len(f.To) == 0 {
		return missing(TypeSend, "to")
	}
	if len(f.To) > MaxRecipients {
		return errorf(CodeTooLarge, "send names %d recipients; the limit is %d (use \"*\" for everyone)", len(f.To), MaxRecipients)
	}
	if !f.To.IsBroadcast() {
		for _, id := range f.To {
			if id == Broadcast {
				return errorf(CodeBadField, `"*" must stand alone in "to"`)
			}
			if err := ValidateID(id); err != nil {
				return err
			}
		}
	}
	if f.Body == "" {
		return missing(TypeSend, "body")
	}
	if len(f.Body) > l.MaxBodyBytes {
		return errorf(CodeTooLarge, "message body is %d bytes; the limit is %d — share a file path or commit instead", len(f.Body), l.MaxBodyBytes)
	}
	if f.ReplyTo != "" {
		if err := ValidateMessageID(f.ReplyTo); err != nil {
			return err
		}
	}
	return checkThread(TypeSend, f.Thread)
}

func (f *Accepted) validate(Limits) error {
	if f.ID == "" {
		return missing(TypeAccepted, "id")
	}
	return nil
}

func (f *Message) validate(Limits) error {
	if f.ID == "" {
		return missing(TypeMessage, "id")
	}
	if f.From == "" {
		return missing(TypeMessage, "from")
	}
	return nil
}

func (f *Ack) validate(Limits) error {
	if f.Upto == 0 {
		return missing(TypeAck, "upto")
	}
	return nil
}

func (f *Presence) validate(Limits) error {
	if f.Event != PresenceJoined && f.Event != PresenceLeft && f.Event != PresenceStatus {
		return errorf(CodeBadField, "presence.event must be %q, %q or %q", PresenceJoined, PresenceLeft, PresenceStatus)
	}
	if f.Peer.ID == "" {
		return missing(TypePresence, "peer.id")
	}
	return nil
}

func (f *Peers) validate(Limits) error    { return nil }
func (f *Sessions) validate(Limits) error { return nil }

func (f *History) validate(Limits) error {
	if f.With != "" {
		if err := ValidateID(f.With); err != nil {
			return err
		}
	}
	for _, c := range []string{f.Before, f.After} {
		if c != "" {
			if err := ValidateMessageID(c); err != nil {
				return err
			}
		}
	}
	if err := checkThread(TypeHistory, f.Thread); err != nil {
		return err
	}
	if f.Limit < 0 || f.Limit > MaxHistoryLimit {
		return errorf(CodeBadField, "history.limit must be 0-%d", MaxHistoryLimit)
	}
	return nil
}

func (f *Clear) validate(Limits) error   { return nil }
func (f *Cleared) validate(Limits) error { return nil }

func (f *ErrorFrame) validate(Limits) error {
	if f.Code == "" {
		return missing(TypeError, "code")
	}
	return nil
}
