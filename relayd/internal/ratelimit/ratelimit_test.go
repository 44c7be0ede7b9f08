package ratelimit

import (
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{
		"30/1m": {30, time.Minute}, "100/10s": {100, 10 * time.Second}, "60/h": {60, time.Hour},
		"0": {}, "off": {}, "0/1m": {},
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"30", "x/1m", "30/xyz", "-1/1m", "5/0s"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
	for r, want := range map[Rate]string{{30, time.Minute}: "30/1m", {100, 10 * time.Second}: "100/10s", {60, time.Hour}: "60/1h", {}: "0"} {
		if r.String() != want {
			t.Errorf("%#v.String() = %q, want %q", r, r.String(), want)
		}
	}
}

func TestBucket(t *testing.T) {
	b := New(Rate{3, 3 * time.Second}) // burst 3, one per second
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := b.Allow("a", t0); !ok {
			t.Fatalf("token %d refused", i)
		}
	}
	ok, retry := b.Allow("a", t0)
	if ok || retry < 990*time.Millisecond || retry > 1010*time.Millisecond {
		t.Fatalf("4th: ok=%v retry=%v, want refused for ~1s", ok, retry)
	}
	if ok, _ := b.Allow("b", t0); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := b.Allow("a", t0.Add(retry)); !ok {
		t.Fatal("refused after the retry delay")
	}
	// Full buckets are forgotten.
	b.Allow("c", t0.Add(time.Hour))
	if n := b.Len(); n != 1 {
		t.Fatalf("%d buckets kept, want 1", n)
	}
	var none *Buckets
	if ok, _ := none.Allow("x", t0); !ok {
		t.Fatal("nil buckets must allow")
	}
}

func TestAllowAllIsAllOrNothing(t *testing.T) {
	pair := New(Rate{2, time.Minute})
	global := New(Rate{4, time.Minute})
	t0 := time.Unix(1000, 0)
	// A→B twice: pair A→B empty, global has 2 left.
	for range 2 {
		if ok, _, _ := AllowAll(t0, Want{global, "", 1}, Want{pair, "A>B", 1}); !ok {
			t.Fatal("refused early")
		}
	}
	// A→{B,C}: A>B is empty, so nothing is taken, not even A>C or global.
	ok, blocked, retry := AllowAll(t0, Want{global, "", 2}, Want{pair, "A>B", 1}, Want{pair, "A>C", 1})
	if ok || blocked.Key != "A>B" || retry <= 0 {
		t.Fatalf("ok=%v blocked=%+v retry=%v", ok, blocked, retry)
	}
	if ok, _, _ := AllowAll(t0, Want{global, "", 1}, Want{pair, "A>C", 1}); !ok {
		t.Fatal("a refused send took tokens")
	}
	// A send bigger than the burst passes once the bucket is full.
	if ok, _, _ := AllowAll(t0.Add(time.Hour), Want{global, "", 50}); !ok {
		t.Fatal("an oversized request never passes")
	}
}

// Wait looks without taking, and remembers no key it has not seen.
func TestWait(t *testing.T) {
	b := New(Rate{2, 2 * time.Second})
	t0 := time.Unix(1000, 0)
	if w := b.Wait("a", t0); w != 0 || b.Len() != 0 {
		t.Fatalf("unknown key: wait %v, %d buckets", w, b.Len())
	}
	b.Allow("a", t0)
	b.Allow("a", t0)
	if w := b.Wait("a", t0); w < 990*time.Millisecond || w > 1010*time.Millisecond {
		t.Fatalf("empty bucket: wait %v, want ~1s", w)
	}
	if w := b.Wait("a", t0); w < 990*time.Millisecond {
		t.Fatalf("Wait took a token: second wait %v", w)
	}
	if w := b.Wait("a", t0.Add(time.Second)); w != 0 {
		t.Fatalf("after a refill: wait %v", w)
	}
	var none *Buckets
	if none.Wait("a", t0) != 0 {
		t.Fatal("nil buckets must allow everything")
	}
}
