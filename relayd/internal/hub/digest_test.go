package hub

import (
	"crypto/sha256"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/protocol"
)

// The SQLite store keeps send digests on disk to recognise a send retried
// across a restart: sendDigest must give what it always gave.
func TestSendDigestUnchanged(t *testing.T) {
	reference := func(s *protocol.Send) [32]byte {
		hash := sha256.New()
		for _, part := range append([]string{s.Body, s.ReplyTo, s.Thread}, s.To...) {
			hash.Write([]byte(part))
			hash.Write([]byte{0})
		}
		var sum [32]byte
		hash.Sum(sum[:0])
		return sum
	}
	r := rand.New(rand.NewPCG(3, 4))
	str := func() string { return strings.Repeat("xé\x00", r.IntN(300)) }
	for range 2000 {
		s := &protocol.Send{Body: str(), ReplyTo: str(), Thread: str()}
		for range r.IntN(4) {
			s.To = append(s.To, str())
		}
		if got, want := sendDigest(s), reference(s); got != want {
			t.Fatalf("sendDigest changed for %+v: %x, was %x", s, got, want)
		}
	}
	// A known value, so the reference above cannot drift with the code.
	got := sendDigest(&protocol.Send{Body: "hi", To: protocol.Recipients{"B"}})
	if want := sha256.Sum256([]byte("hi\x00\x00\x00B\x00")); got != want {
		t.Fatalf("sendDigest = %x, want %x", got, want)
	}
}
