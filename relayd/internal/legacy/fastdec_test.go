package legacy

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// viaJSON is what encoding/json makes of a message frame: ok when it is
// one with content.
func viaJSON(data []byte) (to, content string, ok bool) {
	var f clientFrame
	if json.Unmarshal(data, &f) != nil || f.Type != "message" || f.Content == nil {
		return "", "", false
	}
	return f.To, *f.Content, true
}

var messageFrames = []string{
	`{"type":"message","to":"CC-2","content":"hi"}`,
	`{"content":"hi","type":"message"}`,
	` { "type" : "message" , "to" : "a,b" , "content" : "é 日本 <&>" } `,
	`{"type":"message","to":"CC-2","content":""}`,
	`{"type":"message","to":"CC-2","content":"a\nb"}`,    // an escape: encoding/json reads it
	`{"type":"message","to":"CC-2","content":"a\u00e9"}`, // idem
	`{"type":"message","to":"CC-2","content":"x","content":"y"}`,
	`{"type":"message","To":"CC-2","content":"x"}`,
	`{"type":"message","to":"CC-2","content":"x",}`,
	`{"type":"message","to":"CC-2","content":"x"} x`,
	`{"type":"message","to":"CC-2","content":"x"}{}`,
	`{"type":"message","to":"CC-2"}`,
	`{"type":"message","to":null,"content":"x"}`,
	`{"type":"message","to":"CC-2","content":null}`,
	`{"type":"message","to":"CC-2","content":1}`,
	`{"type":"register","clientId":"CC-2"}`,
	`{"type":"message","to":"CC-2","content":"x","meta":{}}`,
	`{"type":"message""to":"CC-2","content":"x"}`,
	`{"type":"message","to":"CC-2","content":"x"`,
	`{"type":"message","to":"CC-2","content":"x` + "\t" + `"}`,
	`{}`, `[]`, `"message"`, ``,
}

func TestDecodeMessageAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range messageFrames {
		to, content, ok := decodeMessage([]byte(s))
		jto, jcontent, jok := viaJSON([]byte(s))
		if ok && (!jok || to != jto || content != jcontent) {
			t.Errorf("%s: fast read to %q content %q; encoding/json: %q %q %v", s, to, content, jto, jcontent, jok)
		}
	}
	if _, _, ok := decodeMessage([]byte(messageFrames[0])); !ok {
		t.Errorf("%s is not read in one pass", messageFrames[0])
	}
}

// Whatever the fast reader accepts, encoding/json reads the same way.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range messageFrames {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return // Decode refuses it before
		}
		to, content, ok := decodeMessage(data)
		if !ok {
			return
		}
		jto, jcontent, jok := viaJSON(data)
		if !jok || to != jto || content != jcontent {
			t.Fatalf("%q: fast read to %q content %q; encoding/json: %q %q %v", data, to, content, jto, jcontent, jok)
		}
	})
}
