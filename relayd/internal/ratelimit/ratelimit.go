// Package ratelimit holds token buckets keyed by a string (a client id, a
// sender→recipient pair). A Rate "N/WINDOW" allows a burst of N and refills
// N tokens per WINDOW, so over any long stretch at most N per WINDOW pass.
// Buckets that have refilled completely are forgotten: a full bucket is the
// same as a new one, so memory follows the keys that are active.
package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate is N events per Per. The zero Rate means unlimited.
type Rate struct {
	N   int
	Per time.Duration
}

// Unlimited reports whether r allows everything.
func (r Rate) Unlimited() bool { return r.N <= 0 || r.Per <= 0 }

func (r Rate) String() string {
	if r.Unlimited() {
		return "0"
	}
	return fmt.Sprintf("%d/%s", r.N, fmtDur(r.Per))
}

// fmtDur prints 1m rather than 1m0s.
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// ParseRate reads "N/DURATION" (30/1m, 100/10s, 60/1h) or "0" / "off" for
// unlimited. A bare "/s", "/m", "/h" window means one of that unit.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "0" || s == "off" || s == "" {
		return Rate{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: write N/DURATION, e.g. 30/1m, or 0 for no limit", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil || count < 0 {
		return Rate{}, fmt.Errorf("rate %q: %q is not a count; write N/DURATION, e.g. 30/1m", s, n)
	}
	if per != "" && (per[0] < '0' || per[0] > '9') {
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Rate{}, fmt.Errorf("rate %q: %q is not a duration; write N/DURATION, e.g. 30/1m", s, per)
	}
	if count == 0 {
		return Rate{}, nil
	}
	return Rate{N: count, Per: d}, nil
}

type bucket struct {
	tokens float64
	at     time.Time
}

// Buckets is a set of token buckets with one Rate, keyed by string. Safe
// for concurrent use.
type Buckets struct {
	rate  Rate
	mu    sync.Mutex
	m     map[string]*bucket
	swept time.Time
}

// New returns buckets for rate; nil when rate is unlimited (a nil *Buckets
// allows everything).
func New(rate Rate) *Buckets {
	if rate.Unlimited() {
		return nil
	}
	return &Buckets{rate: rate, m: map[string]*bucket{}}
}

// Rate is the rate of the buckets.
func (b *Buckets) Rate() Rate {
	if b == nil {
		return Rate{}
	}
	return b.rate
}

// level refills key's bucket to now and returns it, creating it full.
// Called with mu held.
func (b *Buckets) level(key string, now time.Time) *bucket {
	k := b.m[key]
	if k == nil {
		k = &bucket{tokens: float64(b.rate.N), at: now}
		b.m[key] = k
		return k
	}
	if now.After(k.at) {
		k.tokens = min(float64(b.rate.N), k.tokens+float64(b.rate.N)*float64(now.Sub(k.at))/float64(b.rate.Per))
		k.at = now
	}
	return k
}

// wait is how long until key's bucket holds n tokens; 0 if it does now.
// Called with mu held.
func (b *Buckets) wait(key string, n float64, now time.Time) time.Duration {
	n = min(n, float64(b.rate.N)) // more than a burst passes once the bucket is full
	k := b.level(key, now)
	if k.tokens >= n {
		return 0
	}
	return time.Duration((n-k.tokens)/float64(b.rate.N)*float64(b.rate.Per)).Round(time.Millisecond) + time.Millisecond
}

// take removes n tokens from key's bucket; the caller checked wait.
// Called with mu held.
func (b *Buckets) take(key string, n float64, now time.Time) {
	k := b.level(key, now)
	k.tokens = max(0, k.tokens-min(n, float64(b.rate.N)))
	b.sweep(now)
}

// sweep forgets buckets that are full again, at most once per window.
func (b *Buckets) sweep(now time.Time) {
	if now.Sub(b.swept) < b.rate.Per {
		return
	}
	b.swept = now
	for key, k := range b.m {
		if k.tokens+float64(b.rate.N)*float64(now.Sub(k.at))/float64(b.rate.Per) >= float64(b.rate.N) {
			delete(b.m, key)
		}
	}
}

// Allow takes one token for key if there is one, and otherwise says how
// long until there is.
func (b *Buckets) Allow(key string, now time.Time) (ok bool, retry time.Duration) {
	if b == nil {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if w := b.wait(key, 1, now); w > 0 {
		return false, w
	}
	b.take(key, 1, now)
	return true, 0
}

// Wait is how long until key's bucket holds a token, without taking one;
// 0 if it does now. A key without a bucket is not remembered, so asking
// about many keys costs no memory.
func (b *Buckets) Wait(key string, now time.Time) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m[key] == nil {
		return 0
	}
	return b.wait(key, 1, now)
}

// Len is how many buckets are remembered (for tests).
func (b *Buckets) Len() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// Want is one request against a set of buckets: N tokens from Key.
type Want struct {
	B   *Buckets
	Key string
	N   int
}

// AllowAll takes every want's tokens, or none of them: either all buckets
// have room now, or nothing is taken and the first want that lacks room is
// returned with how long until it has. Buckets are locked in the order
// given; callers always pass them in one fixed order.
func AllowAll(now time.Time, wants ...Want) (ok bool, blocked Want, retry time.Duration) {
	var locked []*Buckets
	defer func() {
		for _, b := range locked {
			b.mu.Unlock()
		}
	}()
	for _, w := range wants {
		if w.B == nil || w.N <= 0 {
			continue
		}
		if !contains(locked, w.B) {
			w.B.mu.Lock()
			locked = append(locked, w.B)
		}
	}
	for _, w := range wants {
		if w.B == nil || w.N <= 0 {
			continue
		}
		if d := w.B.wait(w.Key, float64(w.N), now); d > 0 {
			return false, w, d
		}
	}
	for _, w := range wants {
		if w.B == nil || w.N <= 0 {
			continue
		}
		w.B.take(w.Key, float64(w.N), now)
	}
	return true, Want{}, 0
}

func contains(bs []*Buckets, b *Buckets) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}
