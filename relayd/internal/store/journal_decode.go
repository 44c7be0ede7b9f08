package store

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
)

// Replay decodes every record of the journal: at 200 000 messages,
// encoding/json took five sixths of a restart. The records of sends, and a
// snapshot's of messages and mailboxes, are read here without reflection
// when they are as their encoders write them (appendSubmitRecord,
// appendMessageRecord, appendBoxRecord: keys in that order, no white
// space, plain integers). Any other shape — a record from an older relayd,
// damage — is left to encoding/json, so a record means the same either way
// (TestFastRecordDecodeAsJSON, FuzzFastRecordDecode).

// decodeRecord reads body into r with fast when it can, and with
// encoding/json otherwise.
func decodeRecord[T any](body []byte, r *T, fast func([]byte) (T, bool)) error {
	if v, ok := fast(body); ok {
		*r = v
		return nil
	}
	return json.Unmarshal(body, r)
}

// fastSubmit reads a send's record as appendSubmitRecord writes it; false
// for any other shape.
func fastSubmit(body []byte) (r jSubmit, ok bool) {
	f := fastReader{b: body, ok: true}
	f.lit(`{"m":`)
	r.Msg = f.msg()
	f.lit(`,"r":`)
	r.Recipients = f.strs()
	f.lit(`,"s":`)
	r.Seqs = f.uints()
	if f.next(`,"ref":`) {
		r.Ref = f.str()
	}
	if f.next(`,"dg":`) {
		r.Digest = f.base64()
	}
	f.lit(`}`)
	return r, f.done()
}

// fastMessage reads a snapshot's message record as appendMessageRecord
// writes it.
func fastMessage(body []byte) (r jMessage, ok bool) {
	f := fastReader{b: body, ok: true}
	f.lit(`{"m":`)
	r.Msg = f.msg()
	if f.next(`,"hidden":`) {
		r.Hidden = f.strs()
	}
	f.lit(`}`)
	return r, f.done()
}

// fastBox reads a snapshot's mailbox record as appendBoxRecord writes it.
func fastBox(body []byte) (r jBox, ok bool) {
	f := fastReader{b: body, ok: true}
	f.lit(`{"id":`)
	r.ID = f.str()
	f.lit(`,"last":`)
	r.Last = f.uint()
	f.lit(`,"acked":`)
	r.Acked = f.uint()
	if f.next(`,"rt":`) {
		r.ReadThrough = f.uint()
	}
	if f.next(`,"lr":`) {
		r.LastRead = f.int()
	}
	if f.next(`,"e":`) {
		r.Entries = list(&f, f.boxItem)
	}
	f.lit(`}`)
	return r, f.done()
}

// fastReader reads what the record encoders write; ok turns false at the
// first byte it does not expect, and stays false.
type fastReader struct {
	b  []byte
	ok bool
}

func (f *fastReader) done() bool { return f.ok && len(f.b) == 0 }

// lit reads s.
func (f *fastReader) lit(s string) {
	if !f.next(s) {
		f.ok = false
	}
}

// next reads s if it comes next.
func (f *fastReader) next(s string) bool {
	if !f.ok || len(f.b) < len(s) || string(f.b[:len(s)]) != s {
		return false
	}
	f.b = f.b[len(s):]
	return true
}

func (f *fastReader) msg() (m jMsg) {
	f.lit(`{"id":`)
	m.ID = f.str()
	f.lit(`,"from":`)
	m.From = f.str()
	f.lit(`,"to":`)
	m.To = f.strs()
	f.lit(`,"body":`)
	m.Body = f.str()
	f.lit(`,"ts":`)
	m.TS = f.int()
	if f.next(`,"reply_to":`) {
		m.ReplyTo = f.str()
	}
	if f.next(`,"thread":`) {
		m.Thread = f.str()
	}
	f.lit(`}`)
	return m
}

// str reads a JSON string. One of printable ASCII alone is taken as it
// is; any other (escapes, other bytes, which encoding/json checks and may
// replace) is unquoted by encoding/json.
func (f *fastReader) str() string {
	if !f.ok || len(f.b) == 0 || f.b[0] != '"' {
		f.ok = false
		return ""
	}
	plain := true
	for i := 1; i < len(f.b); i++ {
		switch c := f.b[i]; {
		case c == '"':
			raw := f.b[:i+1]
			f.b = f.b[i+1:]
			if plain {
				return string(raw[1:i])
			}
			var s string
			if json.Unmarshal(raw, &s) != nil {
				f.ok = false
			}
			return s
		case c == '\\':
			plain = false
			i++ // the escaped byte cannot end the string
		case c < 0x20 || c > 0x7e:
			plain = false
		}
	}
	f.ok = false
	return ""
}

// list reads null (nil) or an array of what item reads (never nil, as
// encoding/json makes of []).
func list[T any](f *fastReader, item func() T) []T {
	if f.next(`null`) {
		return nil
	}
	f.lit(`[`)
	out := []T{}
	for f.ok && !f.next(`]`) {
		if len(out) > 0 {
			f.lit(`,`)
		}
		out = append(out, item())
	}
	return out
}

func (f *fastReader) strs() []string  { return list(f, f.str) }
func (f *fastReader) uints() []uint64 { return list(f, f.uint) }

// boxItem reads a mailbox entry as appendBoxRecord writes it: [seq,"id",
// delivered,read].
func (f *fastReader) boxItem() (e jBoxItem) {
	f.lit(`[`)
	e.Seq = f.uint()
	f.lit(`,`)
	e.Msg = f.str()
	f.lit(`,`)
	e.Delivered = f.int()
	f.lit(`,`)
	e.Read = f.int()
	f.lit(`]`)
	return e
}

// digits returns the integer's bytes: an optional minus (when signed),
// then digits with no leading zero, and nothing after them that would make
// it a fraction or an exponent.
func (f *fastReader) digits(signed bool) []byte {
	n := 0
	if signed && n < len(f.b) && f.b[n] == '-' {
		n++
	}
	start := n
	for n < len(f.b) && f.b[n] >= '0' && f.b[n] <= '9' {
		n++
	}
	switch {
	case !f.ok, n == start,
		f.b[start] == '0' && n > start+1,
		n < len(f.b) && (f.b[n] == '.' || f.b[n] == 'e' || f.b[n] == 'E'):
		f.ok = false
		return nil
	}
	d := f.b[:n]
	f.b = f.b[n:]
	return d
}

func (f *fastReader) uint() uint64 {
	d := f.digits(false)
	if !f.ok {
		return 0
	}
	v, err := strconv.ParseUint(string(d), 10, 64)
	if err != nil {
		f.ok = false
	}
	return v
}

func (f *fastReader) int() int64 {
	d := f.digits(true)
	if !f.ok {
		return 0
	}
	v, err := strconv.ParseInt(string(d), 10, 64)
	if err != nil {
		f.ok = false
	}
	return v
}

// base64 reads a string of standard base64, as encoding/json decodes a
// []byte.
func (f *fastReader) base64() []byte {
	s := f.str()
	if !f.ok {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		f.ok = false
	}
	return b
}
