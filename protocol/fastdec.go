package protocol

import (
	"encoding/json"
	"strconv"
	"time"
)

// Every message a client sends is a send frame, and a receiver answers
// them with acks; clients read a message and an accepted for each: these
// four are parsed here in one pass, without
// encoding/json's validation scan, reflection and the two tries of
// Recipients.UnmarshalJSON. The fast path takes only frames written the
// plain way — type first, the frame's own keys spelled exactly, no nulls —
// and gives up on anything else (an unknown or differently cased key, a
// second "type", a syntax error), which then goes through encoding/json as
// before, with its errors. What it accepts it decodes exactly as
// encoding/json would (fastdec_test.go and FuzzFastDecode compare the two).

// decodeFast parses data, a frame whose leading type is f's, into f when it
// is plain; the frame types that implement fastFrame (send, ack, message,
// accepted) take this path. It reports false when the frame must take the
// slow path (f may then hold some fields). data must be valid UTF-8
// (Decode checks that first).
func decodeFast(f fastFrame, data []byte) bool {
	p := fastParser{b: data}
	if !p.prefix(f.Type()) {
		return false
	}
	for {
		p.skipSpace()
		if p.eat('}') {
			break
		}
		if !p.eat(',') {
			return false
		}
		key, ok := p.member()
		if !ok || !f.fastField(&p, key) {
			return false
		}
	}
	p.skipSpace()
	return p.i == len(p.b)
}

// fastFrame is a frame decodeFast parses: fastField reads the value of its
// field key, or reports false for a key it does not take.
type fastFrame interface {
	Frame
	fastField(p *fastParser, key []byte) bool
}

func (s *Send) fastField(p *fastParser, key []byte) (ok bool) {
	switch string(key) { // compared without a copy
	case "ref":
		s.Ref, ok = p.str()
	case "body":
		s.Body, ok = p.str()
	case "reply_to":
		s.ReplyTo, ok = p.str()
	case "thread":
		s.Thread, ok = p.str()
	case "to":
		s.To, ok = p.recipients()
	case "queue_if_unknown":
		s.QueueIfUnknown, ok = p.bool()
	}
	return ok
}

func (a *Ack) fastField(p *fastParser, key []byte) (ok bool) {
	if string(key) == "upto" {
		a.Upto, ok = p.uint()
	}
	return ok
}

func (m *Message) fastField(p *fastParser, key []byte) (ok bool) {
	switch string(key) {
	case "seq":
		m.Seq, ok = p.uint()
	case "id":
		m.ID, ok = p.str()
	case "from":
		m.From, ok = p.str()
	case "to":
		m.To, ok = p.strs()
	case "body":
		m.Body, ok = p.str()
	case "ts":
		ok = p.time(&m.TS)
	case "reply_to":
		m.ReplyTo, ok = p.str()
	case "thread":
		m.Thread, ok = p.str()
	case "person":
		m.Person, ok = p.bool()
	case "provisional":
		m.Provisional, ok = p.bool()
	}
	return ok
}

func (a *Accepted) fastField(p *fastParser, key []byte) (ok bool) {
	switch string(key) {
	case "ref":
		a.Ref, ok = p.str()
	case "id":
		a.ID, ok = p.str()
	case "ts":
		ok = p.time(&a.TS)
	case "recipients":
		a.Recipients, ok = p.outcomes()
	case "warning":
		a.Warning, ok = p.str()
	}
	return ok
}

// fastParser reads JSON from b at i. Its methods report false for anything
// outside the plain subset decodeFast takes.
type fastParser struct {
	b []byte
	i int
}

// prefix reads {"type":"TYP" at the very start (no leading space: JSON's
// whitespace and Decode's trimming differ).
func (p *fastParser) prefix(typ string) bool {
	const open = `{"type":"`
	n := len(open) + len(typ) + 1
	if len(p.b) < n || string(p.b[:len(open)]) != open || string(p.b[len(open):n-1]) != typ || p.b[n-1] != '"' {
		return false
	}
	p.i = n
	return true
}

func (p *fastParser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// member reads `"key" :` and the space after it.
func (p *fastParser) member() ([]byte, bool) {
	p.skipSpace()
	key, ok := p.key()
	if !ok {
		return nil, false
	}
	p.skipSpace()
	if !p.eat(':') {
		return nil, false
	}
	p.skipSpace()
	return key, true
}

func (p *fastParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// key reads an object key with no escapes, without copying it.
func (p *fastParser) key() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			p.i++
			return p.b[start : p.i-1], true
		}
		if c == '\\' || c < 0x20 {
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// str reads a string value. One with escapes is handed to encoding/json,
// so every escape means what it means there.
func (p *fastParser) str() (string, bool) {
	if !p.eat('"') {
		return "", false
	}
	start := p.i
	escaped := false
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if !escaped {
				return string(p.b[start : p.i-1]), true
			}
			var s string
			if json.Unmarshal(p.b[start-1:p.i], &s) != nil {
				return "", false
			}
			return s, true
		case c == '\\':
			escaped = true
			p.i += 2
		case c < 0x20:
			return "", false
		default:
			p.i++
		}
	}
	return "", false
}

// rawStr reads a string token as it stands, quotes and escapes included.
func (p *fastParser) rawStr() ([]byte, bool) {
	start := p.i
	if !p.eat('"') {
		return nil, false
	}
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return p.b[start:p.i], true
		case c == '\\':
			p.i += 2
		case c < 0x20:
			return nil, false
		default:
			p.i++
		}
	}
	return nil, false
}

// time reads a time as encoding/json does: the token, as it stands, to
// time.Time's UnmarshalJSON.
func (p *fastParser) time(t *time.Time) bool {
	tok, ok := p.rawStr()
	return ok && t.UnmarshalJSON(tok) == nil
}

// strs reads a list of strings ([] is an empty, not a nil, list).
func (p *fastParser) strs() ([]string, bool) {
	if !p.eat('[') {
		return nil, false
	}
	list := []string{}
	p.skipSpace()
	if p.eat(']') {
		return list, true
	}
	for {
		p.skipSpace()
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		list = append(list, s)
		p.skipSpace()
		if p.eat(']') {
			return list, true
		}
		if !p.eat(',') {
			return nil, false
		}
	}
}

// outcomes reads accepted's recipients: a list of {"id":…,"status":…}.
func (p *fastParser) outcomes() ([]Outcome, bool) {
	if !p.eat('[') {
		return nil, false
	}
	list := []Outcome{}
	p.skipSpace()
	if p.eat(']') {
		return list, true
	}
	for {
		p.skipSpace()
		if !p.eat('{') {
			return nil, false
		}
		var o Outcome
		p.skipSpace()
		if !p.eat('}') {
			for {
				key, ok := p.member()
				if !ok {
					return nil, false
				}
				switch string(key) {
				case "id":
					o.ID, ok = p.str()
				case "status":
					o.Status, ok = p.str()
				default:
					ok = false
				}
				if !ok {
					return nil, false
				}
				p.skipSpace()
				if p.eat('}') {
					break
				}
				if !p.eat(',') {
					return nil, false
				}
			}
		}
		list = append(list, o)
		p.skipSpace()
		if p.eat(']') {
			return list, true
		}
		if !p.eat(',') {
			return nil, false
		}
	}
}

// recipients reads "to": one id as a string, or a list of ids.
func (p *fastParser) recipients() (Recipients, bool) {
	if p.i < len(p.b) && p.b[p.i] == '"' {
		s, ok := p.str()
		return Recipients{s}, ok
	}
	list, ok := p.strs()
	return Recipients(list), ok
}

func (p *fastParser) bool() (bool, bool) {
	rest := p.b[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// uint reads a whole number that fits a uint64, written without sign,
// fraction, exponent or leading zeros.
func (p *fastParser) uint() (uint64, bool) {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	digits := p.b[start:p.i]
	if len(digits) == 0 || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	return n, err == nil
}
