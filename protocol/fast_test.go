package protocol

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Pieces of strings that encoding/json escapes or treats specially, and
// plain ones.
var trickyPieces = []string{
	"a", "CC-1", "hello world", `"`, `\`, "<", ">", "&", "\x00", "\x01", "\b", "\f", "\n", "\r", "\t", "\x1f", "\x7f",
	"é", "日本", "\u2028", "\u2029", "\U0001F600", "\xff", "\xc3", "\xed\xa0\x80", "/", "'", "\ufffd", " ", "*",
}

func randString(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(6) {
		b.WriteString(trickyPieces[r.IntN(len(trickyPieces))])
	}
	return b.String()
}

func randTime(r *rand.Rand) time.Time {
	zones := []*time.Location{time.UTC, time.FixedZone("", 3600), time.FixedZone("X", -5*3600-30*60), time.FixedZone("S", 61), time.Local}
	years := []int{2026, 1970, 0, 9999, -1, 10000, 1}
	t := time.Date(years[r.IntN(len(years))], time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(3)*r.IntN(1e9), zones[r.IntN(len(zones))])
	if r.IntN(8) == 0 {
		return time.Time{}
	}
	return t
}

func randStrings(r *rand.Rand) []string {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	out := make([]string, 1+r.IntN(3))
	for i := range out {
		out[i] = randString(r)
	}
	return out
}

func randMessage(r *rand.Rand) *Message {
	return &Message{Seq: r.Uint64() >> r.IntN(64), ID: randString(r), From: randString(r), To: randStrings(r),
		Body: randString(r), TS: randTime(r), ReplyTo: randString(r), Thread: randString(r)}
}

func randSend(r *rand.Rand) *Send {
	return &Send{Ref: randString(r), To: randStrings(r), Body: randString(r), ReplyTo: randString(r), Thread: randString(r), QueueIfUnknown: r.IntN(2) == 0}
}

func randAccepted(r *rand.Rand) *Accepted {
	a := &Accepted{Ref: randString(r), ID: randString(r), TS: randTime(r)}
	if r.IntN(2) == 0 {
		a.Warning = randString(r)
	}
	if r.IntN(4) != 0 {
		a.Recipients = []Outcome{}
		for range r.IntN(4) {
			a.Recipients = append(a.Recipients, Outcome{ID: randString(r), Status: randString(r)})
		}
	}
	return a
}

// checkFastEncode fails unless the fast encoder writes exactly what
// encoding/json writes for f, or leaves f to it when encoding/json fails.
func checkFastEncode(t *testing.T, f Frame) {
	t.Helper()
	want, werr := encodeJSON(f)
	checkAppendEncode(t, f, want, werr)
	got, ok := appendFast(nil, f)
	if werr != nil {
		if ok {
			t.Fatalf("encoding/json refuses %#v (%v) but the fast encoder wrote %s", f, werr, got)
		}
		return
	}
	if !ok {
		t.Fatalf("the fast encoder gave up on %#v, which encoding/json writes as %s", f, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("fast encoding differs from encoding/json for %#v:\n got %s\nwant %s", f, got, want)
	}
	if enc, err := Encode(f); err != nil || !bytes.Equal(enc, want) {
		t.Fatalf("Encode = %s, %v; want %s", enc, err, want)
	}
}

// checkAppendEncode fails unless AppendEncode after a prefix gives the
// prefix and then want, or on werr the prefix alone and an error.
func checkAppendEncode(t *testing.T, f Frame, want []byte, werr error) {
	t.Helper()
	prefix := "earlier frame\n"
	got, err := AppendEncode([]byte(prefix), f)
	switch {
	case werr != nil && (err == nil || string(got) != prefix):
		t.Fatalf("AppendEncode of %#v, which encoding/json refuses (%v) = %q, %v; want the prefix alone and an error", f, werr, got, err)
	case werr == nil && (err != nil || string(got) != prefix+string(want)):
		t.Fatalf("AppendEncode of %#v = %q, %v; want %q", f, got, err, prefix+string(want))
	}
}

// AppendEncode renders the frames the fast encoder does not take through
// encoding/json, after what the buffer held.
func TestAppendEncodeSlowFrames(t *testing.T) {
	for _, f := range []Frame{
		&Welcome{Server: "relayd", Proto: Version, ClientID: "CC-1", Peers: []Peer{{ID: "CC-2"}}},
		&ErrorFrame{Ref: "r", Code: CodeBadJSON, Message: "<bad>"},
		&Peers{Ref: "p"},
	} {
		want, err := encodeJSON(f)
		if err != nil {
			t.Fatal(err)
		}
		checkAppendEncode(t, f, want, nil)
	}
}

func TestFastEncodeMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for range 20000 {
		checkFastEncode(t, randMessage(r))
		checkFastEncode(t, randAccepted(r))
		checkFastEncode(t, randSend(r))
		checkFastEncode(t, &Ack{Upto: r.Uint64() >> r.IntN(64)})
	}
	// A broadcast: "*" in a send, but a list of one in the message.
	checkFastEncode(t, &Send{Ref: "r", To: Recipients{Broadcast}, Body: "x"})
	checkFastEncode(t, &Message{ID: "i", From: "f", To: []string{Broadcast}, Body: "x"})
}

func FuzzFastEncode(f *testing.F) {
	f.Add(uint64(18), "0193a1b2-0000-7000-8000-000000000002", "CC-1", "CC-2", "the bug is in auth.js line 42", "auth", int64(1764063000123000000), 0)
	f.Add(uint64(0), "", "", "", "<\u2028\xff>", "\n", int64(-62135596800000000000/1000), 61)
	f.Fuzz(func(t *testing.T, seq uint64, id, from, to, body, thread string, nanos int64, offset int) {
		ts := time.Unix(0, nanos).In(time.FixedZone("", offset%(48*3600)))
		checkFastEncode(t, &Message{Seq: seq, ID: id, From: from, To: []string{to, body}, Body: body, TS: ts, ReplyTo: thread, Thread: thread})
		checkFastEncode(t, &Message{ID: id, From: from, Body: body, TS: ts})
		checkFastEncode(t, &Accepted{Ref: thread, ID: id, TS: ts, Recipients: []Outcome{{ID: to, Status: from}, {ID: body}}})
		checkFastEncode(t, &Accepted{Ref: thread, ID: id, TS: ts, Warning: body})
		checkFastEncode(t, &Send{Ref: thread, To: Recipients{to}, Body: body, ReplyTo: id, Thread: from, QueueIfUnknown: seq%2 == 0})
		checkFastEncode(t, &Ack{Upto: seq})
	})
}

// checkFastDecode fails unless what the fast decoder makes of data is what
// encoding/json makes of it. It reports whether the fast path took data.
func checkFastDecode(t *testing.T, data []byte) bool {
	t.Helper()
	if !utf8.Valid(data) {
		return false // Decode refuses these before either path
	}
	typ, ok := leadingType(data)
	if !ok {
		return false
	}
	got, ok := typ.New().(fastFrame)
	if !ok || !decodeFast(got, data) {
		return false
	}
	want := typ.New()
	if err := json.Unmarshal(data, want); err != nil {
		t.Fatalf("the fast decoder took %q, which encoding/json refuses: %v", data, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast decoding of %q differs from encoding/json:\n got %#v\nwant %#v", data, got, want)
	}
	return true
}

func TestFastDecodeMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	validUTF8 := func() string { return strings.ToValidUTF8(randString(r), "?") }
	taken, takenClient := 0, 0
	for range 20000 {
		s := &Send{Ref: validUTF8(), Body: validUTF8(), ReplyTo: validUTF8(), Thread: validUTF8(), QueueIfUnknown: r.IntN(2) == 0}
		switch r.IntN(3) {
		case 0:
			s.To = Recipients{validUTF8()}
		case 1:
			s.To = Recipients{}
		default:
			s.To = Recipients{validUTF8(), validUTF8()}
		}
		b, err := encodeJSON(s)
		if err != nil {
			t.Fatal(err)
		}
		if r.IntN(2) == 0 { // spaces between tokens, as a person might write
			b = bytes.ReplaceAll(b, []byte(`","`), []byte(`" ,	"`))
			b = append(b, " \n"...)
		}
		if checkFastDecode(t, b) {
			taken++
		}
		a, _ := encodeJSON(&Ack{Upto: r.Uint64() >> r.IntN(64)})
		checkFastDecode(t, a)
		m := randMessage(r)
		m.ID, m.From, m.Body, m.ReplyTo, m.Thread = validUTF8(), validUTF8(), validUTF8(), validUTF8(), validUTF8()
		for i := range m.To {
			m.To[i] = validUTF8()
		}
		if b, err := encodeJSON(m); err == nil && checkFastDecode(t, b) {
			takenClient++
		}
		acc := randAccepted(r)
		acc.Ref, acc.ID = validUTF8(), validUTF8()
		for i := range acc.Recipients {
			acc.Recipients[i] = Outcome{ID: validUTF8(), Status: validUTF8()}
		}
		if b, err := encodeJSON(acc); err == nil && checkFastDecode(t, b) {
			takenClient++
		}
	}
	if taken < 15000 {
		t.Errorf("the fast decoder took %d of 20000 plain sends; it should take (nearly) all", taken)
	}
	if takenClient < 15000 {
		t.Errorf("the fast decoder took %d of 40000 messages and accepteds (some encoding/json refuses, some have a null list); expected over 15000", takenClient)
	}
	// Frames the fast path must leave to encoding/json, or decode alike.
	for _, s := range []string{
		`{"type":"send","ref":"r","to":"*","body":"x"}`,
		`{"type":"send","ref":"r","to":["A","B"],"body":"x","queue_if_unknown":true}`,
		`{"type":"send","Ref":"r","to":"*","body":"x"}`,
		`{"type":"send","ref":"r","ref":"s","to":"*","body":"x"}`,
		`{"type":"send","ref":null,"to":"*","body":"x"}`,
		`{"type":"send","ref":"r","to":[],"body":"x"}`,
		`{"type":"send","ref":"r","to":[null],"body":"x"}`,
		`{"type":"send","ref":"r","to":"*","body":"a\"b\\c\u00e9\ud83d\ude00\ud800"}`,
		`{"type":"send","ref":"r","to":"*","body":"\x"}`,
		`{"type":"send","ref":"r","to":"*","body":"x"}x`,
		`{"type":"send","ref":"r","to":"*","body":"x",}`,
		`{"type":"send","type":"ack","upto":1}`,
		`{"type":"send","extra":1}`,
		`{"type":"send","queue_if_unknown":tru}`,
		`{"type":"ack","upto":18}`,
		`{"type":"ack","upto":018}`,
		`{"type":"ack","upto":1.0}`,
		`{"type":"ack","upto":1e3}`,
		`{"type":"ack","upto":-1}`,
		`{"type":"ack","upto":18446744073709551616}`,
		`{"type":"ack","upto":18446744073709551615}`,
		`{"type":"ack","upto":"1"}`,
		`{"type":"ack"}`,
		"{\"type\":\"ack\",\"upto\":1}\v",
		` {"type":"ack","upto":1}`,
		`{"type":"message","seq":18,"id":"i","from":"A","to":["B","*"],"body":"x","ts":"2026-11-25T09:30:00.123Z","thread":"t"}`,
		`{"type":"message","seq":1,"id":"i","from":"A","to":"B","body":"x","ts":"2026-11-25T09:30:00Z"}`,
		`{"type":"message","seq":1,"id":"i","from":"A","to":[],"body":"x","ts":"2026-11-25T09:30:00+01:00"}`,
		`{"type":"message","seq":1,"id":"i","from":"A","to":null,"body":"x","ts":"2026-11-25T09:30:00Z"}`,
		`{"type":"message","seq":1,"id":"i","from":"A","body":"x","ts":"2026-11-25 09:30:00"}`,
		`{"type":"message","seq":1,"id":"i","from":"A","body":"x","ts":null}`,
		`{"type":"message","seq":1,"id":"i","from":"A","body":"x","ts":"\u0032026-11-25T09:30:00Z"}`,
		`{"type":"message","seq":1,"id":"i","from":"A","body":"x","ts":"2026-11-25T09:30:00Z","ts":"2027-01-01T00:00:00Z"}`,
		`{"type":"accepted","ref":"r","id":"i","ts":"2026-11-25T09:30:00Z","recipients":[{"id":"B","status":"delivered"},{"status":"queued","id":"C"},{}]}`,
		`{"type":"accepted","ref":"r","id":"i","ts":"2026-11-25T09:30:00Z","recipients":[{"id":"B","extra":1}]}`,
		`{"type":"accepted","ref":"r","id":"i","ts":"2026-11-25T09:30:00Z","recipients":[{"id":"B",}]}`,
		`{"type":"accepted","ref":"r","id":"i","ts":"2026-11-25T09:30:00Z","recipients":[]}`,
		`{"type":"accepted","ref":"r","id":"i","ts":"2026-11-25T09:30:00Z","recipients":{}}`,
	} {
		checkFastDecode(t, []byte(s))
		// And Decode as a whole gives what encoding/json's path gives.
		slowF, slowErr := decodeSlow([]byte(s))
		f, err := Decode([]byte(s))
		if !reflect.DeepEqual(f, slowF) || !reflect.DeepEqual(err, slowErr) {
			t.Errorf("Decode(%s) = %#v, %v; the encoding/json path gives %#v, %v", s, f, err, slowF, slowErr)
		}
	}
}

// decodeSlow is Decode with the fast path off.
func decodeSlow(data []byte) (Frame, error) { return DefaultLimits.decode(data, false) }

func FuzzFastDecode(f *testing.F) {
	f.Add([]byte(`{"type":"send","ref":"r1","to":["CC-2","CODEX"],"body":"the bug is in auth.js line 42","reply_to":"0193a1b2-0000-7000-8000-000000000001","thread":"auth"}`))
	f.Add([]byte(`{"type":"send","ref":"r","to":"*","body":"a\"b\\c\u00e9\ud83d\ude00\ud800","queue_if_unknown":false}`))
	f.Add([]byte(`{"type":"ack","upto":18}`))
	f.Add([]byte(`{"type":"message","seq":18,"id":"i","from":"A","to":["B"],"body":"x","ts":"2026-11-25T09:30:00.123Z","reply_to":"r","thread":"t"}`))
	f.Add([]byte(`{"type":"accepted","ref":"r","id":"i","ts":"2026-11-25T09:30:00+01:00","recipients":[{"id":"B","status":"delivered"}]}`))
	f.Add([]byte(`{"type":"ack" , "upto" : 18446744073709551615 }`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastDecode(t, data)
		slowF, slowErr := decodeSlow(data)
		fr, err := Decode(data)
		if !reflect.DeepEqual(fr, slowF) || !reflect.DeepEqual(err, slowErr) {
			t.Fatalf("Decode(%q) = %#v, %v; the encoding/json path gives %#v, %v", data, fr, err, slowF, slowErr)
		}
	})
}

// TestAppendJSONStringMatchesEncodingJSON checks the word-at-a-time path
// against encoding/json at every alignment: a byte to escape at each place
// of a word, before and after runs of plain bytes.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	specials := []string{"\"", "\\", "\x00", "\x1f", "\n", "<", ">", "&", "\x7f", " ", "~", "é", "\u2028", "\xff", "\xe2\x80"}
	for _, sp := range specials {
		for pre := range 17 {
			for post := range 10 {
				checkAppendJSONString(t, strings.Repeat("a", pre)+sp+strings.Repeat("b", post))
			}
		}
	}
	r := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	alphabet := []byte("abc xyz019\"\\<>&\x00\x1f\x7f\x80\xc3\xa9\xe2")
	for range 20000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			if r.IntN(8) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = byte('a' + r.IntN(26))
			}
		}
		checkAppendJSONString(t, string(b))
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("the bug is in auth.js line 42")
	f.Add("0123456<\u2028\xff>\"\\\x01abcdefgh")
	f.Fuzz(func(t *testing.T, s string) { checkAppendJSONString(t, s) })
}

// checkAppendJSONString fails unless AppendJSONString quotes s as
// json.Marshal does (escapeHTML) and as an Encoder without HTML escaping
// does.
func checkAppendJSONString(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := AppendJSONString(nil, s, true); string(got) != string(want) {
		t.Fatalf("AppendJSONString(%q, html) = %s, want %s", s, got, want)
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	if got, want := string(AppendJSONString(nil, s, false)), strings.TrimSuffix(buf.String(), "\n"); got != want {
		t.Fatalf("AppendJSONString(%q) = %s, want %s", s, got, want)
	}
}
