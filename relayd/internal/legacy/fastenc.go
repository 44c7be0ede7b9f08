package legacy

import "github.com/claude-relay/claude-relay/protocol"

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

// appendString appends s quoted as encoding/json's encoder quotes it with
// SetEscapeHTML(false): the older relay's JSON.stringify leaves <, > and &
// as they are.
func appendString(dst []byte, s string) []byte { return protocol.AppendJSONString(dst, s, false) }
