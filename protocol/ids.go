package protocol

import (
	"strings"
	"unicode/utf8"
)

// MaxIDLen is the longest client or message id.
const MaxIDLen = 64

// Broadcast is the recipient that means every peer online except the sender.
const Broadcast = "*"

// LegacyBroadcast is the word the older Node relay's agents use for Broadcast.
// It is reserved: no client may take it as its id.
const LegacyBroadcast = "all"

// PersonPrefix starts the ids of people: the relay's operators, who post
// from its console (message.person is set on what they send). No client
// may say hello with such an id, so an agent cannot pass for a person;
// agents may still send to one (a reply to the operator).
const PersonPrefix = "person."

// IsPersonID reports whether id is a person's (it starts with PersonPrefix).
func IsPersonID(id string) bool { return strings.HasPrefix(id, PersonPrefix) }

// ValidateID checks a client id: 1 to 64 characters of A-Z a-z 0-9 . _ -,
// not starting with '.' or '-' (so an id is never a path component such as
// ".." nor read as a command-line flag), and not the reserved word "all".
func ValidateID(id string) error {
	if id == "" {
		return errorf(CodeBadID, "id is empty; use 1-%d of A-Z a-z 0-9 . _ - (for example CC-1)", MaxIDLen)
	}
	if len(id) > MaxIDLen {
		return errorf(CodeBadID, "id %q is %d characters; the limit is %d", truncate(id, 16), len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !idChar(id[i]) {
			return errorf(CodeBadID, "id %q has %q at position %d; ids use only A-Z a-z 0-9 . _ -", truncate(id, 70), displayByte(id, i), i+1)
		}
	}
	if id[0] == '.' || id[0] == '-' {
		return errorf(CodeBadID, "id %q starts with %q; start with a letter, digit or _", id, id[0])
	}
	if strings.EqualFold(id, LegacyBroadcast) {
		return errorf(CodeBadID, "id %q is reserved: it means everyone", id)
	}
	return nil
}

// ValidateMessageID checks a message id given by a client (reply_to, history
// cursors): the same characters as a client id, since the relay's UUIDv7 ids
// are made of them.
func ValidateMessageID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return errorf(CodeBadID, "message id must be 1-%d characters", MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !idChar(id[i]) {
			return errorf(CodeBadID, "message id %q has %q at position %d", truncate(id, 70), displayByte(id, i), i+1)
		}
	}
	return nil
}

func idChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// displayByte shows the character at byte i for an error message, falling
// back to the byte when the input is not valid UTF-8.
func displayByte(s string, i int) string {
	r, _ := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError {
		return string([]byte{s[i]})
	}
	return string(r)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
