package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// The records the encoders write are read without encoding/json, and to
// the same values encoding/json gives.
func TestFastRecordDecodeAsJSON(t *testing.T) {
	tricky := []string{"", "CC-1", `say "hi" \ back`, "<script>&</script>", "line\nbreak\ttab", "\u2028\u2029", "bad \xff utf-8", "😀 ünïcode", "\x00\x1f", "\x7f"}
	for i, s := range tricky {
		next := tricky[(i+1)%len(tricky)]
		msg := Message{ID: "m-" + s, From: s, To: []string{next, s}, Body: s + next, TS: time.Unix(1700000000, int64(i)), ReplyTo: next, Thread: s}
		if i%3 == 0 {
			msg.To, msg.ReplyTo, msg.Thread = nil, "", ""
		}
		slots := []Slot{{Seq: uint64(i + 1)}, {Seq: 1<<64 - 1}}
		for _, ref := range []*SendRef{nil, {Ref: s, Digest: [32]byte{byte(i), 0xff}}, {Digest: [32]byte{1}}} {
			body := recordBody(t, appendSubmitRecord(nil, &msg, []string{next, s}, slots, ref))
			fast, ok := fastSubmit(body)
			if !ok {
				t.Errorf("send record %q: not read without encoding/json", body)
			}
			sameAsJSON(t, body, fast, nil)
		}
		for _, hidden := range [][]string{nil, {s, next}} {
			body := recordBody(t, appendMessageRecord(nil, &jMessage{Msg: toJMsg(&msg), Hidden: hidden}))
			fast, ok := fastMessage(body)
			if !ok {
				t.Errorf("message record %q: not read without encoding/json", body)
			}
			sameAsJSON(t, body, fast, nil)
		}
		for _, entries := range [][]jBoxItem{nil, {{Seq: 1, Msg: s, Delivered: 5, Read: -1}, {Seq: 2, Msg: next}}} {
			body := recordBody(t, appendBoxRecord(nil, &jBox{ID: s, Last: uint64(i), Acked: 1, ReadThrough: uint64(i % 2), LastRead: -int64(i % 3), Entries: entries}))
			fast, ok := fastBox(body)
			if !ok {
				t.Errorf("mailbox record %q: not read without encoding/json", body)
			}
			sameAsJSON(t, body, fast, nil)
		}
	}
}

// Records of another shape — white space, other key orders or keys,
// numbers encoding/json refuses or reads otherwise — are read as
// encoding/json reads them, or refused as it refuses them.
func TestRecordDecodeOtherShapes(t *testing.T) {
	for _, body := range []string{
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"r":["c"],"s":[1]}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"r":["c"],"s":[1]} `,
		`{ "m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"r":["c"],"s":[1]}`,
		`{"r":["c"],"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"s":[1]}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1,"extra":2},"r":["c"],"s":[1]}`,
		`{"m":{"id":"a","from":"b","to":null,"body":"x","ts":-0},"r":[],"s":[]}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1e3},"r":["c"],"s":[1]}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":01},"r":["c"],"s":[1]}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"r":["c"],"s":[-1]}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"r":["c"],"s":[18446744073709551616]}`,
		`{"m":{"id":"\u0041\n","from":"b","to":["c"],"body":"x\q","ts":1},"r":["c"],"s":[1]}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"r":["c"],"s":[1],"dg":"!!"}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"r":["c"],"s":[1],"dg":null}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"r":["c"],"s":[1],"ref":"r","dg":""}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"r":["c"],"s":[1]}{}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"r":["c"],"s":[1]`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"` + "raw\x01" + `","ts":1},"r":["c"],"s":[1]}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"` + "bad \xff utf-8, del \x7f, ünï" + `","ts":1},"r":["c"],"s":[1]}`,
	} {
		asJSON(t, []byte(body), fastSubmit)
	}
	for _, body := range []string{
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"hidden":[]}`,
		`{"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1},"hidden":null}`,
		`{"hidden":["b"],"m":{"id":"a","from":"b","to":["c"],"body":"x","ts":1}}`,
	} {
		asJSON(t, []byte(body), fastMessage)
	}
	for _, body := range []string{
		`{"id":"c","last":3,"acked":1,"e":[]}`,
		`{"id":"c","last":3,"acked":1,"e":null}`,
		`{"id":"c","last":3,"acked":1,"e":[[3,"m",0,0],[4,"n",0]]}`,
		`{"id":"c","last":3,"acked":1,"e":[[3,"m",0,0,5]]}`,
		`{"id":"c","last":3,"acked":1,"e":[[3, "m",0,0]]}`,
		`{"id":"c","last":3,"acked":1,"lr":-5,"rt":2}`,
		`{"id":"c","last":3,"acked":1,"rt":2,"lr":-5,"e":[[3,"m",-1,9]]}`,
	} {
		asJSON(t, []byte(body), fastBox)
	}
}

// asJSON checks decodeRecord with fast against encoding/json on body: the
// same value, or an error where encoding/json gives one.
func asJSON[T any](t *testing.T, body []byte, fast func([]byte) (T, bool)) {
	t.Helper()
	var got T
	err := decodeRecord(body, &got, fast)
	sameAsJSON(t, body, got, err)
}

// sameAsJSON checks got, and err, against what encoding/json makes of body.
func sameAsJSON[T any](t *testing.T, body []byte, got T, err error) {
	t.Helper()
	var want T
	wantErr := json.Unmarshal(body, &want)
	switch {
	case (err == nil) != (wantErr == nil):
		t.Errorf("%q: error %v, encoding/json's %v", body, err, wantErr)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Errorf("%q:\n got %#v\nwant %#v", body, got, want)
	}
}

// recordBody is the body of the one record in b.
func recordBody(t testing.TB, b []byte) []byte {
	t.Helper()
	_, body, size, err := nextRecord(b)
	if err != nil || size != len(b) {
		t.Fatalf("record %q: %v (size %d of %d)", b, err, size, len(b))
	}
	return body
}

func FuzzFastRecordDecode(f *testing.F) {
	msg := Message{ID: "m1", From: "a", To: []string{"b"}, Body: `hi "x"`, TS: time.Unix(1, 2), Thread: "t"}
	f.Add(byte(0), recordBody(f, appendSubmitRecord(nil, &msg, []string{"b"}, []Slot{{Seq: 1}}, &SendRef{Ref: "r"})))
	f.Add(byte(1), recordBody(f, appendMessageRecord(nil, &jMessage{Msg: toJMsg(&msg), Hidden: []string{"a"}})))
	f.Add(byte(2), recordBody(f, appendBoxRecord(nil, &jBox{ID: "b", Last: 2, Acked: 1, LastRead: 3, Entries: []jBoxItem{{Seq: 1, Msg: "m1", Read: 4}}})))
	f.Fuzz(func(t *testing.T, kind byte, body []byte) {
		switch kind % 3 {
		case 0:
			asJSON(t, body, fastSubmit)
		case 1:
			asJSON(t, body, fastMessage)
		default:
			asJSON(t, body, fastBox)
		}
	})
}
