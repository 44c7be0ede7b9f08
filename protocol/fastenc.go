package protocol

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// The relay writes a message and an accepted for every message it carries:
// they are encoded here by appending, without encoding/json's reflection
// and its intermediate buffers. The output is byte for byte what Encode
// writes through encoding/json (fastenc_test.go compares the two on random
// frames, and FuzzFastEncode on fuzzed ones); anything this encoder does not
// cover (a time encoding/json refuses) goes the slow way and gets its error.

// appendFast appends the encoding of f to dst when f is a frame this file
// encodes. ok is false when the caller must use encoding/json instead.
func appendFast(dst []byte, f Frame) (out []byte, ok bool) {
	switch f := f.(type) {
	case *Message:
		return appendMessage(dst, f)
	case *Accepted:
		return appendAccepted(dst, f)
	case *Send:
		return appendSend(dst, f), true
	case *Ack:
		dst = append(dst, `{"type":"ack","upto":`...)
		return append(strconv.AppendUint(dst, f.Upto, 10), '}'), true
	}
	return dst, false
}

// appendSend is for clients (relay-mcp, relayd load): every message they
// send is one.
func appendSend(dst []byte, s *Send) []byte {
	dst = append(dst, `{"type":"send","ref":`...)
	dst = appendJSONString(dst, s.Ref)
	dst = append(dst, `,"to":`...)
	if s.To.IsBroadcast() { // as Recipients.MarshalJSON writes it
		dst = append(dst, `"*"`...)
	} else {
		dst = appendStrings(dst, s.To)
	}
	dst = append(dst, `,"body":`...)
	dst = appendJSONString(dst, s.Body)
	if s.ReplyTo != "" {
		dst = append(dst, `,"reply_to":`...)
		dst = appendJSONString(dst, s.ReplyTo)
	}
	if s.Thread != "" {
		dst = append(dst, `,"thread":`...)
		dst = appendJSONString(dst, s.Thread)
	}
	if s.QueueIfUnknown {
		dst = append(dst, `,"queue_if_unknown":true`...)
	}
	return append(dst, '}')
}

// appendStrings appends a list of strings as json.Marshal writes a
// []string (nil is null).
func appendStrings(dst []byte, list []string) []byte {
	if list == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, id := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, id)
	}
	return append(dst, ']')
}

func appendMessage(dst []byte, m *Message) ([]byte, bool) {
	dst = append(dst, `{"type":"message","seq":`...)
	dst = strconv.AppendUint(dst, m.Seq, 10)
	dst = append(dst, `,"id":`...)
	dst = appendJSONString(dst, m.ID)
	dst = append(dst, `,"from":`...)
	dst = appendJSONString(dst, m.From)
	dst = append(dst, `,"to":`...)
	dst = appendStrings(dst, m.To)
	dst = append(dst, `,"body":`...)
	dst = appendJSONString(dst, m.Body)
	dst = append(dst, `,"ts":`...)
	dst, ok := appendJSONTime(dst, m.TS)
	if !ok {
		return dst, false
	}
	if m.ReplyTo != "" {
		dst = append(dst, `,"reply_to":`...)
		dst = appendJSONString(dst, m.ReplyTo)
	}
	if m.Thread != "" {
		dst = append(dst, `,"thread":`...)
		dst = appendJSONString(dst, m.Thread)
	}
	if m.Person {
		dst = append(dst, `,"person":true`...)
	}
	if m.Provisional {
		dst = append(dst, `,"provisional":true`...)
	}
	return append(dst, '}'), true
}

func appendAccepted(dst []byte, a *Accepted) ([]byte, bool) {
	dst = append(dst, `{"type":"accepted","ref":`...)
	dst = appendJSONString(dst, a.Ref)
	dst = append(dst, `,"id":`...)
	dst = appendJSONString(dst, a.ID)
	dst = append(dst, `,"ts":`...)
	dst, ok := appendJSONTime(dst, a.TS)
	if !ok {
		return dst, false
	}
	dst = append(dst, `,"recipients":`...)
	if a.Recipients == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, o := range a.Recipients {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = appendJSONString(dst, o.ID)
			dst = append(dst, `,"status":`...)
			dst = appendJSONString(dst, o.Status)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if a.Warning != "" {
		dst = append(dst, `,"warning":`...)
		dst = appendJSONString(dst, a.Warning)
	}
	return append(dst, '}'), true
}

// appendJSONTime appends t as time.Time.MarshalJSON does; ok is false for
// the times it refuses (years outside 0–9999, odd offsets).
func appendJSONTime(dst []byte, t time.Time) ([]byte, bool) {
	out, err := t.AppendText(append(dst, '"'))
	if err != nil {
		return dst, false
	}
	return append(out, '"'), true
}

const hexDigits = "0123456789abcdef"

// Bytes of a word, for plain8's tests of all eight at once.
const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// plain8 reports whether the eight bytes of w (in any order) are ASCII
// that a JSON string holds as is: none is a control character, a quote or
// a backslash, nor (with escapeHTML) <, > or &. A byte of 0x80 or above
// sends the word to the byte-by-byte path, which checks its UTF-8.
func plain8(w uint64, escapeHTML bool) bool {
	if w&highBits != 0 {
		return false
	}
	// Every byte is below 0x80 now, so no subtraction below borrows
	// across bytes unless one is under its bound: these are exact.
	bad := (w - 0x20*lowBits) &^ w // a byte under 0x20
	bad |= hasZeroByte(w ^ '"'*lowBits)
	bad |= hasZeroByte(w ^ '\\'*lowBits)
	if escapeHTML {
		bad |= hasZeroByte(w^'<'*lowBits) | hasZeroByte(w^'>'*lowBits) | hasZeroByte(w^'&'*lowBits)
	}
	return bad&highBits == 0
}

// load8 is the first eight bytes of s as a little-endian word (the
// compiler makes it one load).
func load8(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// hasZeroByte has a high bit set where some byte of v is zero (and
// perhaps above it): 0 if and only if no byte is.
func hasZeroByte(v uint64) uint64 { return (v - lowBits) &^ v & highBits }

// appendJSONString appends s quoted as json.Marshal quotes it.
func appendJSONString(dst []byte, s string) []byte { return AppendJSONString(dst, s, true) }

// AppendJSONString appends s as a JSON string, quoted as encoding/json
// quotes it: quotes, backslashes, control characters, U+2028 and U+2029
// escaped, invalid UTF-8 replaced by \ufffd; with escapeHTML also <, > and
// & (as json.Marshal does; an Encoder with SetEscapeHTML(false) leaves
// them). It is for the codecs that write frames without reflection: this
// package's and relayd's codec of the older protocol.
func AppendJSONString(dst []byte, s string, escapeHTML bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight plain bytes at a time: a message body is mostly ASCII
		// that needs no escape, and this is most of the encoder's time.
		if i+8 <= len(s) && plain8(load8(s[i:i+8]), escapeHTML) {
			i += 8
			continue
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && (!escapeHTML || b != '<' && b != '>' && b != '&') {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// fastSize guesses the encoded size of f, so Encode allocates once.
func fastSize(f Frame) int {
	switch f := f.(type) {
	case *Message:
		n := 128 + len(f.ID) + len(f.From) + len(f.Body) + len(f.ReplyTo) + len(f.Thread)
		for _, id := range f.To {
			n += len(id) + 3
		}
		return n + n/8 // room for a few escapes
	case *Accepted:
		n := 96 + len(f.Ref) + len(f.ID) + len(f.Warning)
		for _, o := range f.Recipients {
			n += len(o.ID) + len(o.Status) + 20
		}
		return n
	case *Send:
		n := 80 + len(f.Ref) + len(f.Body) + len(f.ReplyTo) + len(f.Thread)
		for _, id := range f.To {
			n += len(id) + 3
		}
		return n + n/8
	case *Ack:
		return 48
	}
	return 0
}
