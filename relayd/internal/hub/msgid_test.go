package hub

import (
	"regexp"
	"testing"
	"time"
)

var uuidv7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// Ids made in one millisecond, across milliseconds and with a clock that
// steps back all sort in the order they were made: history pages use that
// order as their cursor.
func TestMessageIDsSortInOrder(t *testing.T) {
	var g idGen
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	clock := []time.Time{base, base, base, base.Add(time.Millisecond), base.Add(-time.Second), base.Add(2 * time.Millisecond)}
	prev := ""
	for i := 0; i < 10000; i++ {
		id := g.next(clock[i%len(clock)])
		if !uuidv7.MatchString(id) {
			t.Fatalf("%q is not a UUIDv7", id)
		}
		if id <= prev {
			t.Fatalf("id %d %s sorts before %s", i, id, prev)
		}
		prev = id
	}
}
