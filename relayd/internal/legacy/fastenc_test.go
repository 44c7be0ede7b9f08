package legacy

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

// viaEncoder is a message as Encode wrote it before appendMessage: through
// encoding/json's encoder, HTML left as it is.
func viaEncoder(t testing.TB, m *protocol.Message) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(toLegacy(m)); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

var trickyStrings = []string{
	"", "plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "é ü 日本 🎉", "\u2028\u2029", "bad \xff utf-8 \xc3", "\"\\\"",
}

func TestAppendMessageWritesWhatTheEncoderWrote(t *testing.T) {
	ts := time.Date(2026, 11, 25, 8, 15, 1, 100478557, time.FixedZone("CET", 3600))
	for _, s := range trickyStrings {
		for _, to := range [][]string{{"OLD"}, {protocol.Broadcast}, {"A", "B"}, nil, {s}} {
			for _, id := range []string{"m-1", "", s} {
				m := &protocol.Message{ID: id, From: s, To: to, Body: s, TS: ts}
				got, ok, err := New(protocol.Limits{}).AppendEncode(nil, m, "OLD")
				if want := viaEncoder(t, m); !ok || err != nil || string(got) != want {
					t.Errorf("message from %q to %q, id %q:\n got %s (%v, %v)\nwant %s", s, to, id, got, ok, err, want)
				}
			}
		}
	}
}

func FuzzAppendMessage(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, s, "OLD", int64(1764576000123))
	}
	f.Fuzz(func(t *testing.T, from, body, to string, ms int64) {
		m := &protocol.Message{ID: "m", From: from, To: []string{to}, Body: body, TS: time.UnixMilli(ms % 253402300799000)}
		got := appendMessage(nil, m)
		if want := viaEncoder(t, m); string(got) != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}

func BenchmarkEncodeMessage(b *testing.B) {
	c := New(protocol.Limits{})
	m := &protocol.Message{ID: "01KB8Z7Q0000000000000000", From: "echo-a", To: []string{"echo-b"}, Body: string(bytes.Repeat([]byte("x"), 100)), TS: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		c.AppendEncode(nil, m, "echo-b")
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	c := New(protocol.Limits{})
	data := []byte(`{"type":"message","to":"echo-b","content":"` + string(bytes.Repeat([]byte("x"), 100)) + `"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeMessageViaEncoder(b *testing.B) {
	m := &protocol.Message{ID: "01KB8Z7Q0000000000000000", From: "echo-a", To: []string{"echo-b"}, Body: string(bytes.Repeat([]byte("x"), 100)), TS: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		viaEncoder(b, m)
	}
}
