package protocol

import (
	"strings"
	"testing"
	"time"
)

// Frames as a relay and its clients exchange them most: a send and an ack
// from clients, a message and an accepted from the relay, and a request
// that takes the encoding/json path.
var benchFrames = []struct {
	name string
	f    Frame
}{
	{"send", &Send{Ref: "r-000042", To: Recipients{"CC-2"}, Body: "the bug is in auth.js line 42; see commit 1a2b3c", Thread: "auth"}},
	{"ack", &Ack{Upto: 123456}},
	{"message", &Message{Seq: 18, ID: "0193a1b2-0000-7000-8000-000000000002", From: "CC-1", To: []string{"CC-2"},
		Body: "the bug is in auth.js line 42; see commit 1a2b3c", TS: time.Date(2026, 12, 2, 5, 0, 0, 123000000, time.UTC), Thread: "auth"}},
	{"accepted", &Accepted{Ref: "r-000042", ID: "0193a1b2-0000-7000-8000-000000000002", TS: time.Date(2026, 12, 2, 5, 0, 0, 123000000, time.UTC),
		Recipients: []Outcome{{ID: "CC-2", Status: StatusDelivered}}}},
	{"history", &History{Ref: "h1", With: "CC-2", Limit: 20}},
	{"status", &Status{Ref: "st1", Status: "working on the auth refactor"}},
}

func BenchmarkEncode(b *testing.B) {
	for _, bf := range benchFrames {
		b.Run(bf.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(bf.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bf := range benchFrames {
		data, err := Encode(bf.f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bf.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRefOf is the lookup a client does for every answer it matches
// to its request.
func BenchmarkRefOf(b *testing.B) {
	for _, bf := range benchFrames {
		b.Run(bf.name, func(b *testing.B) {
			for b.Loop() {
				RefOf(bf.f)
			}
		})
	}
}

// BenchmarkAppendJSONString is a message body's quoting, which the relay
// does for every frame and journal record it writes.
func BenchmarkAppendJSONString(b *testing.B) {
	body := strings.Repeat("the bug is in auth.js line 42; ", 4)[:100]
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		buf = AppendJSONString(buf[:0], body, true)
	}
}
