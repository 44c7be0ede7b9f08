// Package auth decides who may open a connection to the relay and which
// client ids that connection may then claim.
//
// Two kinds of credential exist. The shared token (RELAY_TOKEN,
// --token-file) lets its holder claim any id. Per-identity tokens come from
// a tokens file (--tokens-file), one line each:
//
//	# comment
//	sha256:<64 hex digits: SHA-256 of the token> <id-glob>[,<id-glob>…]  # comment
//
// so that a token leaked from the machine of CC-2 cannot pose as CC-1. The
// file holds digests, never tokens: reading it does not give anyone a way
// in. Presented tokens are hashed and compared with every digest in constant
// time, so neither the tokens nor which line matched leak through timing.
// Nothing in this package logs or prints a token except NewToken's caller.
package auth

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Identity is what a presented credential allows.
type Identity struct {
	// Name identifies the credential in logs and error messages without
	// revealing it: "shared token", "tokens-file line 3", or "no auth".
	Name  string
	any   bool
	globs []string
}

// Anyone is the identity of every client when the relay has no tokens.
var Anyone = Identity{Name: "no auth", any: true}

// May reports whether the identity may claim clientID.
func (id Identity) May(clientID string) bool {
	if id.any {
		return true
	}
	for _, g := range id.globs {
		if ok, _ := path.Match(g, clientID); ok {
			return true
		}
	}
	return false
}

// Globs lists the id patterns the identity may claim, comma-separated ("*"
// for any).
func (id Identity) Globs() string {
	if id.any {
		return "*"
	}
	return strings.Join(id.globs, ",")
}

// Entry is one line of a tokens file.
type Entry struct {
	Digest [sha256.Size]byte // SHA-256 of the token
	Globs  []string          // the ids it may claim
	Line   int               // 1-based line number, for messages
}

// Tokens is a parsed tokens file.
type Tokens struct {
	Entries []Entry
}

// DigestPrefix starts the digest field of a tokens-file line.
const DigestPrefix = "sha256:"

// maxLine bounds one line of a tokens file; a real line is under 200 bytes.
const maxLine = 64 << 10

// ParseTokens reads a tokens file. Errors name the line and what to do.
// An empty file parses to no entries.
func ParseTokens(r io.Reader) (*Tokens, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	t := &Tokens{}
	seen := map[[sha256.Size]byte]int{}
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want `sha256:<hex> <id-glob>[,<id-glob>…]`, got %d fields (globs are separated by commas, not spaces); `relayd token new --ids 'CC-*'` prints a line to copy", n, len(fields))
		}
		digest, ok := strings.CutPrefix(fields[0], DigestPrefix)
		if !ok {
			return nil, fmt.Errorf("line %d: the first field must be sha256:<hex of the token's SHA-256>, not the token itself; `relayd token hash --ids …` turns a token into a line", n)
		}
		raw, err := hex.DecodeString(digest)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("line %d: sha256: needs %d hex digits (the token's SHA-256); `relayd token hash --ids …` computes it", n, 2*sha256.Size)
		}
		var e Entry
		copy(e.Digest[:], raw)
		e.Line = n
		if prev, dup := seen[e.Digest]; dup {
			return nil, fmt.Errorf("line %d: the same token is on line %d; give each token one line and list all its ids there", n, prev)
		}
		seen[e.Digest] = n
		e.Globs, err = ParseGlobs(fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		t.Entries = append(t.Entries, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line is longer than %d bytes; this is not a tokens file", maxLine)
		}
		return nil, err
	}
	return t, nil
}

// LoadTokens reads and parses the tokens file at path. A file without a
// single token is an error: it would let nobody in.
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading --tokens-file: %w", err)
	}
	defer f.Close()
	t, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("--tokens-file %s: %w", path, err)
	}
	if len(t.Entries) == 0 {
		return nil, fmt.Errorf("--tokens-file %s has no tokens; add one with `relayd token new --ids 'CC-*'`", path)
	}
	return t, nil
}

// ParseGlobs splits a comma-separated list of id globs and checks each.
func ParseGlobs(s string) ([]string, error) {
	var out []string
	for _, g := range strings.Split(s, ",") {
		if err := ValidateGlob(g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// ValidateGlob checks one id pattern: id characters (A-Z a-z 0-9 . _ -)
// and the wildcards * ? [ ] ^ of path.Match. Backslash escapes are
// refused: no id needs one.
func ValidateGlob(g string) error {
	if g == "" {
		return errors.New("empty id glob (two commas in a row, or a trailing comma?)")
	}
	if len(g) > 128 {
		return fmt.Errorf("id glob %.20q… is longer than 128 characters", g)
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_*?[]^", c) >= 0) {
			return fmt.Errorf("id glob %q has %q; use id characters A-Z a-z 0-9 . _ - and the wildcards * ? [ ]", g, c)
		}
	}
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("id glob %q is malformed (an unclosed [ ?)", g)
	}
	return nil
}

// Authenticator checks presented tokens against the shared token and the
// tokens file. The zero value lets everyone in.
type Authenticator struct {
	shared    [sha256.Size]byte
	hasShared bool
	tokens    *Tokens
}

// NewAuthenticator returns an authenticator for the shared token (may be
// empty) and tokens (may be nil).
func NewAuthenticator(shared string, tokens *Tokens) *Authenticator {
	a := &Authenticator{tokens: tokens}
	if shared != "" {
		a.shared, a.hasShared = sha256.Sum256([]byte(shared)), true
	}
	return a
}

// Enabled reports whether any token is required.
func (a *Authenticator) Enabled() bool {
	return a != nil && (a.hasShared || a.tokens != nil && len(a.tokens.Entries) > 0)
}

// Check returns the identity of a presented token. It compares against
// every credential, without stopping at a match, in constant time per
// credential.
func (a *Authenticator) Check(token string) (Identity, bool) {
	if !a.Enabled() {
		return Anyone, true
	}
	if token == "" {
		return Identity{}, false
	}
	sum := sha256.Sum256([]byte(token))
	sharedOK := a.hasShared && subtle.ConstantTimeCompare(sum[:], a.shared[:]) == 1
	match := -1
	if a.tokens != nil {
		for i := range a.tokens.Entries {
			if subtle.ConstantTimeCompare(sum[:], a.tokens.Entries[i].Digest[:]) == 1 {
				match = i
			}
		}
	}
	switch {
	case sharedOK:
		return Identity{Name: "shared token", any: true}, true
	case match >= 0:
		e := a.tokens.Entries[match]
		return Identity{Name: fmt.Sprintf("tokens-file line %d", e.Line), globs: e.Globs}, true
	}
	return Identity{}, false
}

// NewToken returns a fresh token: 32 random bytes, base64url without
// padding (43 characters, safe in headers, URLs and shell variables).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Line returns the tokens-file line that lets token claim globs.
func Line(token string, globs []string) string {
	sum := sha256.Sum256([]byte(token))
	return DigestPrefix + hex.EncodeToString(sum[:]) + " " + strings.Join(globs, ",")
}
