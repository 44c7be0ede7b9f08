package protocol

import (
	"strings"
	"testing"
)

func init() {
	samples = append(samples,
		&Status{Ref: "st1", Status: "working on the auth refactor in repo app"},
		&Watch{Ref: "w1", IDs: []string{"CODEX"}},
		&Mail{For: "CODEX", Count: 2, Seq: 19},
	)
}

func TestStatusWatchFramesRefused(t *testing.T) {
	for _, c := range []struct{ frame, code string }{
		{`{"type":"status","ref":"a","status":"` + strings.Repeat("x", MaxStatusBytes+1) + `"}`, string(CodeTooLarge)},
		{`{"type":"status","ref":"a","status":"two\nlines"}`, string(CodeBadField)},
		{`{"type":"watch","ref":"a","ids":[]}`, string(CodeMissingField)},
		{`{"type":"watch","ref":"a","ids":["a b"]}`, string(CodeBadID)},
		{`{"type":"mail","count":1}`, string(CodeMissingField)},
		{`{"type":"history","ref":"a","thread":"` + strings.Repeat("t", MaxThreadBytes+1) + `"}`, string(CodeTooLarge)},
		{`{"type":"hello","proto":1,"client_id":"A","status":"x\ty"}`, string(CodeBadField)},
	} {
		_, err := Decode([]byte(c.frame))
		e, ok := err.(*Error)
		if !ok || string(e.Code) != c.code {
			t.Errorf("Decode(%.60s…) = %v, want code %s", c.frame, err, c.code)
			continue
		}
		if strings.HasPrefix(c.frame, `{"type":"status"`) || strings.HasPrefix(c.frame, `{"type":"watch"`) {
			if e.Ref != "a" {
				t.Errorf("Decode(%.40s…) ref = %q, want a", c.frame, e.Ref)
			}
		}
	}
}
