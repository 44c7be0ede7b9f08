package legacy

// A message frame is what an older client sends most: it is read here in
// one pass, without reflection, when it is as clients write it — an object
// of "type":"message", "to" and "content", each once, string values
// without escapes. Anything else (another key, an escape, a number, a
// duplicate) is left to encoding/json, so what a frame means never depends
// on which of the two read it; the fuzz test holds them to the same answer.

// decodeMessage returns the "to" and "content" of data when it is such a
// message frame; ok is false for anything else, whatever it is. data is
// valid UTF-8.
func decodeMessage(data []byte) (to, content string, ok bool) {
	p := scanner{data: data}
	if !p.eat('{') {
		return "", "", false
	}
	var seen [3]bool // type, to, content
	for {
		key, ok := p.str()
		if !ok || !p.eat(':') {
			return "", "", false
		}
		val, ok := p.str()
		if !ok {
			return "", "", false
		}
		i := -1
		switch string(key) {
		case "type":
			if string(val) == "message" {
				i = 0
			}
		case "to":
			to, i = string(val), 1
		case "content":
			content, i = string(val), 2
		}
		if i < 0 || seen[i] {
			return "", "", false
		}
		seen[i] = true
		if p.eat(',') {
			continue
		}
		if p.eat('}') && !p.rest() && seen[0] && seen[2] {
			return to, content, true
		}
		return "", "", false
	}
}

// scanner reads the few JSON tokens decodeMessage accepts.
type scanner struct {
	data []byte
	pos  int
}

func (p *scanner) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// eat skips white space and c; false (nothing but the space skipped) if
// the next byte is not c.
func (p *scanner) eat(c byte) bool {
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// rest reports whether anything but white space follows.
func (p *scanner) rest() bool {
	p.space()
	return p.pos < len(p.data)
}

// str reads a string without escapes or control characters and returns
// its bytes (a slice of data).
func (p *scanner) str() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.pos
	for p.pos < len(p.data) {
		switch b := p.data[p.pos]; {
		case b == '"':
			p.pos++
			return p.data[start : p.pos-1], true
		case b == '\\' || b < 0x20:
			return nil, false
		}
		p.pos++
	}
	return nil, false
}
