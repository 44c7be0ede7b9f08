package legacy

import (
	"unicode/utf8"

	"github.com/claude-relay/claude-relay/protocol"
)

// A message is the frame an older client is written most, once per message
// it receives: it is written here by appending, as the encoding/json
// encoder of Encode would write it, without reflection and with one
// allocation. The test compares the two on every kind of string.

// appendMessage appends m as Encode writes a legacyMessage.
func appendMessage(dst []byte, m *protocol.Message) []byte {
	dst = append(dst, `{"type":"message","from":`...)
	dst = appendString(dst, m.From)
	dst = append(dst, `,"to":`...)
	dst = appendString(dst, legacyTo(m.To))
	dst = append(dst, `,"content":`...)
	dst = appendString(dst, m.Body)
	dst = append(dst, `,"timestamp":"`...)
	dst = m.TS.UTC().AppendFormat(dst, isoMillis) // no character of it needs escaping
	dst = append(dst, '"')
	if m.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, m.ID)
	}
	return append(dst, '}')
}

// messageSize is about the size appendMessage writes for m, so it
// allocates once.
func messageSize(m *protocol.Message) int {
	n := 96 + len(m.From) + len(m.Body) + len(m.ID)
	for _, id := range m.To {
		n += len(id) + 1
	}
	return n + n/8 // room for a few escapes
}

const hexDigits = "0123456789abcdef"

// appendString appends s quoted as encoding/json's encoder quotes it with
// SetEscapeHTML(false) (the older relay's JSON.stringify leaves <, > and &
// as they are): quotes, backslashes and control characters escaped, U+2028
// and U+2029 escaped, invalid UTF-8 replaced by \ufffd.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
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
