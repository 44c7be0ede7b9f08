package auth

import (
	"strings"
	"testing"
)

func TestParseAndCheck(t *testing.T) {
	cc2, _ := NewToken()
	bot, _ := NewToken()
	file := "# team relay\n\n" + Line(cc2, []string{"CC-2"}) + "   # laptop of CC-2\n" + Line(bot, []string{"BOT-*", "CI-?"}) + "\n"
	toks, err := ParseTokens(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuthenticator("the-shared-one", toks)
	if !a.Enabled() {
		t.Fatal("not enabled")
	}
	tests := []struct {
		token, id string
		ok, may   bool
	}{
		{cc2, "CC-2", true, true},
		{cc2, "CC-1", true, false}, // a leaked CC-2 token cannot pose as CC-1
		{bot, "BOT-build", true, true},
		{bot, "CI-7", true, true},
		{bot, "CI-77", true, false},
		{"the-shared-one", "anything", true, true},
		{"wrong", "CC-2", false, false},
		{"", "CC-2", false, false},
	}
	for _, tt := range tests {
		id, ok := a.Check(tt.token)
		if ok != tt.ok || ok && id.May(tt.id) != tt.may {
			t.Errorf("Check(%.6s…) as %s = %v (%s), may %v; want %v, may %v", tt.token, tt.id, ok, id.Name, id.May(tt.id), tt.ok, tt.may)
		}
	}
	if id, _ := a.Check(cc2); id.Name != "tokens-file line 3" || id.Globs() != "CC-2" {
		t.Errorf("identity = %+v", id)
	}
	if id, _ := (*Authenticator)(nil).Check(""); !id.May("X") {
		t.Error("no authenticator must let everyone in")
	}
}

func TestParseErrors(t *testing.T) {
	good := Line("t", []string{"CC-1"})
	tests := []struct{ in, want string }{
		{"mytoken CC-1", "not the token itself"},
		{"sha256:abcd CC-1", "64 hex digits"},
		{good + " extra", "3 fields"},
		{strings.Fields(good)[0], "1 fields"},
		{strings.Fields(good)[0] + " CC-1,,CC-2", "empty id glob"},
		{strings.Fields(good)[0] + " CC/1", "has '/'"},
		{strings.Fields(good)[0] + " CC-[1", "malformed"},
		{good + "\n" + good, "line 2: the same token is on line 1"},
		{strings.Repeat("x", maxLine+1), "longer than"},
	}
	for _, tt := range tests {
		_, err := ParseTokens(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTokens(%.40q) = %v, want an error mentioning %q", tt.in, err, tt.want)
		}
	}
}

func TestNewToken(t *testing.T) {
	a, _ := NewToken()
	b, _ := NewToken()
	if len(a) != 43 || a == b {
		t.Fatalf("tokens %q %q", a, b)
	}
}

// FuzzParseTokens: the tokens file decoder never panics, every entry it
// returns has valid globs, and each entry's line re-parses to itself.
func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("# c\n" + Line("x", []string{"CC-*", "BOT-?"}) + " # tail\n"))
	f.Add([]byte("sha256:zz CC\n"))
	f.Add([]byte("sha256:" + strings.Repeat("0", 64) + " [\n"))
	f.Add([]byte("\x00\xff\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		toks, err := ParseTokens(strings.NewReader(string(data)))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, e := range toks.Entries {
			for _, g := range e.Globs {
				if err := ValidateGlob(g); err != nil {
					t.Fatalf("accepted bad glob %q: %v", g, err)
				}
			}
			line := DigestPrefix + hexOf(e.Digest[:]) + " " + strings.Join(e.Globs, ",")
			back, err := ParseTokens(strings.NewReader(line))
			if err != nil || len(back.Entries) != 1 || back.Entries[0].Digest != e.Digest || strings.Join(back.Entries[0].Globs, ",") != strings.Join(e.Globs, ",") {
				t.Fatalf("line %q does not round-trip: %v", line, err)
			}
		}
	})
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
