package hub

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// idGen makes message ids: UUIDv7 (RFC 9562) whose 12-bit rand_a field is a
// counter within one millisecond, so ids from one relay sort by string in the
// order they were made. History pages use that order as their cursor.
type idGen struct {
	mu      sync.Mutex
	lastMS  int64
	counter uint16
}

func (g *idGen) next(now time.Time) string {
	ms := now.UnixMilli()
	g.mu.Lock()
	if ms <= g.lastMS {
		ms = g.lastMS
		g.counter++
		if g.counter > 0x0fff { // counter exhausted: borrow the next millisecond
			ms++
			g.counter = 0
		}
	} else {
		g.counter = 0
	}
	g.lastMS = ms
	counter := g.counter
	g.mu.Unlock()

	var u [16]byte
	u[0], u[1], u[2] = byte(ms>>40), byte(ms>>32), byte(ms>>24)
	u[3], u[4], u[5] = byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | byte(counter>>8)
	u[7] = byte(counter)
	rand.Read(u[8:])
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant

	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}
