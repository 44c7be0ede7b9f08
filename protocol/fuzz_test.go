package protocol

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecode checks that Decode never panics, that every failure is a typed
// *Error, and that whatever it accepts survives an Encode/Decode round trip.
func FuzzDecode(f *testing.F) {
	golden, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	for _, p := range golden {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"send","ref":"r","to":"*","body":"x"}`))
	f.Add([]byte(`{"type":"hello","proto":1,"client_id":"CC\u00001"}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := Decode(data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Code == "" || pe.Message == "" {
				t.Fatalf("Decode error %v (%T) is not a complete *Error", err, err)
			}
			return
		}
		b, err := Encode(fr)
		if err != nil {
			t.Fatalf("Encode(Decode(x)): %v", err)
		}
		back, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(x))) = %v for %s", err, b)
		}
		if !reflect.DeepEqual(normalize(back), normalize(fr)) {
			t.Fatalf("round trip differs:\n%#v\n%#v", back, fr)
		}
	})
}

// normalize clears what JSON cannot round-trip exactly (time zones are
// re-read as fixed offsets); the fields a client reads stay.
func normalize(f Frame) Frame {
	b, _ := Encode(f)
	return frameString(b)
}

type frameString string

func (frameString) Type() string          { return "" }
func (frameString) validate(Limits) error { return nil }
