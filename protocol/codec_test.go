package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var ts = time.Date(2026, 11, 25, 9, 30, 0, 123000000, time.UTC)

// samples holds one frame of every type, as written to testdata/golden.
var samples = []Frame{
	&Hello{Proto: 1, ClientID: "CC-1", Host: "mbp", PID: 4242, Cwd: "/src/app", Agent: "claude-code", Label: "auth refactor", ResumeAfter: 17},
	&Welcome{Server: "relayd 0.1.0", Proto: 1, ClientID: "CC-1", HeartbeatMS: 15000,
		Peers:    []Peer{{ID: "CC-1", Host: "mbp", PID: 4242, Agent: "claude-code", ConnectedSince: ts, LastSeen: ts}},
		Replaced: &Replaced{Host: "mbp", PID: 4100}, Backlog: 2, LastSeq: 20},
	&Send{Ref: "r1", To: Recipients{"CC-2", "CODEX"}, Body: "the bug is in auth.js line 42", ReplyTo: "0193a1b2-0000-7000-8000-000000000001", Thread: "auth"},
	&Accepted{Ref: "r1", ID: "0193a1b2-0000-7000-8000-000000000002", TS: ts, Recipients: []Outcome{{ID: "CC-2", Status: StatusDelivered}, {ID: "CODEX", Status: StatusQueued}}},
	&Message{Seq: 18, ID: "0193a1b2-0000-7000-8000-000000000002", From: "CC-1", To: []string{"CC-2", "CODEX"}, Body: "the bug is in auth.js line 42", TS: ts, Thread: "auth"},
	&Ack{Upto: 18},
	&Presence{Event: PresenceLeft, Peer: Peer{ID: "CC-2", Host: "mbp", ConnectedSince: ts, LastSeen: ts}, Reason: "closed"},
	&Peers{Ref: "p1", Peers: []Peer{{ID: "CC-1", Host: "mbp", Cwd: "/src/app", ConnectedSince: ts, LastSeen: ts, Unread: 2, LastRead: ts}}},
	&Sessions{Ref: "s1", Sessions: []Session{{ID: "CODEX", Online: false, Host: "box", FirstSeen: ts, LastSeen: ts, Queued: 1}}},
	&History{Ref: "h1", With: "CC-2", Before: "0193a1b2-0000-7000-8000-000000000009", Limit: 2,
		Messages: []Message{{ID: "0193a1b2-0000-7000-8000-000000000002", From: "CC-1", To: []string{"CC-2"}, Body: "hi", TS: ts}}, More: true},
	&Clear{Ref: "c1", IncludeUnread: true},
	&Cleared{Ref: "c1", Cleared: 3},
	&Read{IDs: []string{"0193a1b2-0000-7000-8000-000000000002"}},
	&Receipts{Ref: "q1", IDs: []string{"0193a1b2-0000-7000-8000-000000000002"}, Receipts: []Receipt{
		{ID: "0193a1b2-0000-7000-8000-000000000002", To: "CC-2", State: ReceiptRead, StoredAt: ts, DeliveredAt: ts, ReadAt: ts},
		{ID: "0193a1b2-0000-7000-8000-000000000002", To: "CODEX", State: ReceiptStored, StoredAt: ts}}},
	&ErrorFrame{Ref: "r9", Code: CodeRateLimited, Message: "too many messages; wait 200 ms", RetryAfterMS: 200},
}

func TestGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range samples {
		t.Run(f.Type(), func(t *testing.T) {
			seen[f.Type()] = true
			got, err := Encode(f)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", f.Type()+".json")
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, bytes.TrimSpace(want)) {
				t.Errorf("Encode changed the wire format of %s:\n got %s\nwant %s\n(run go test -update if this is deliberate)", f.Type(), got, want)
			}
			back, err := Decode(want)
			if err != nil {
				t.Fatalf("Decode(golden): %v", err)
			}
			if !reflect.DeepEqual(back, f) {
				t.Errorf("round trip differs:\n got %#v\nwant %#v", back, f)
			}
		})
	}
	// A type without a sample above still has its golden file, which
	// Decode must read and Encode write back byte for byte — or, for a
	// type added since, a whole example in docs/protocol.md, which
	// TestSpecFrames holds to the same (so a new frame needs no file of
	// its own here).
	documented := map[string]bool{}
	frames, _ := specFrames(t)
	for _, f := range frames {
		var head struct {
			Type string `json:"type"`
		}
		if json.Unmarshal([]byte(f.text), &head) == nil {
			documented[head.Type] = true
		}
	}
	for _, typ := range allTypes {
		if seen[typ] {
			continue
		}
		want, err := os.ReadFile(filepath.Join("testdata", "golden", typ+".json"))
		if errors.Is(err, fs.ErrNotExist) && documented[typ] {
			continue // TestSpecFrames checks its examples
		}
		if err != nil {
			t.Errorf("frame type %q has neither an example in %s nor a golden file: show it in the docs, or add a sample here and run go test -update", typ, specPath)
			continue
		}
		want = bytes.TrimSpace(want)
		f, err := Decode(want)
		if err != nil {
			t.Errorf("Decode(testdata/golden/%s.json): %v", typ, err)
			continue
		}
		if got, err := Encode(f); err != nil || !bytes.Equal(got, want) {
			t.Errorf("Encode changed the wire format of %s:\n got %s\nwant %s", typ, got, want)
		}
	}
}

func TestEncodeTypeFirst(t *testing.T) {
	b, err := Encode(&Peers{})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"type":"peers"}` {
		t.Errorf("Encode(&Peers{}) = %s", b)
	}
}

func TestDecodeErrors(t *testing.T) {
	long := strings.Repeat("x", DefaultMaxBodyBytes+1)
	tests := []struct {
		name    string
		in      string
		code    Code
		ref     string
		contain string
	}{
		{"empty", ``, CodeBadJSON, "", "JSON object"},
		{"garbage", `hello there`, CodeBadJSON, "", "JSON object"},
		{"array", `[1,2]`, CodeBadJSON, "", "JSON object"},
		{"truncated", `{"type":"send","ref":"a"`, CodeBadJSON, "", "not valid JSON"},
		{"bad utf8", "{\"type\":\"send\",\"body\":\"\xff\"}", CodeBadJSON, "", "UTF-8"},
		{"no type", `{"ref":"a"}`, CodeMissingField, "a", `no "type"`},
		{"type not string", `{"type":5}`, CodeBadJSON, "", "not valid JSON"},
		{"unknown type", `{"type":"teleport","ref":"z"}`, CodeUnknownType, "z", `unknown frame type "teleport"`},
		{"hello no id", `{"type":"hello","proto":1}`, CodeMissingField, "", "client_id"},
		{"hello no proto", `{"type":"hello","client_id":"CC-1"}`, CodeMissingField, "", "proto"},
		{"hello bad id", `{"type":"hello","proto":1,"client_id":"CC 1"}`, CodeBadID, "", "position 3"},
		{"hello nul id", "{\"type\":\"hello\",\"proto\":1,\"client_id\":\"CC\\u00001\"}", CodeBadID, "", "ids use only"},
		{"hello reserved", `{"type":"hello","proto":1,"client_id":"ALL"}`, CodeBadID, "", "reserved"},
		{"hello huge proto", `{"type":"hello","proto":1e400,"client_id":"A"}`, CodeBadField, "", "proto"},
		{"send no to", `{"type":"send","ref":"r","body":"x"}`, CodeMissingField, "r", `"to"`},
		{"send no body", `{"type":"send","ref":"r","to":"*"}`, CodeMissingField, "r", `"body"`},
		{"send no ref", `{"type":"send","to":"*","body":"x"}`, CodeMissingField, "", `"ref"`},
		{"send bad to", `{"type":"send","ref":"r","to":7,"body":"x"}`, CodeBadField, "r", `"to" must be`},
		{"send star mixed", `{"type":"send","ref":"r","to":["*","A"],"body":"x"}`, CodeBadField, "r", "stand alone"},
		{"send bad recipient", `{"type":"send","ref":"r","to":["../etc"],"body":"x"}`, CodeBadID, "r", "ids use only"},
		{"send body too big", `{"type":"send","ref":"r","to":"A","body":"` + long + `"}`, CodeTooLarge, "r", "share a file path"},
		{"send thread control", `{"type":"send","ref":"r","to":"A","body":"x","thread":"a\nb"}`, CodeBadField, "r", "control"},
		{"ack zero", `{"type":"ack"}`, CodeMissingField, "", "upto"},
		{"ack negative", `{"type":"ack","upto":-1}`, CodeBadField, "", "upto"},
		{"history limit", `{"type":"history","ref":"h","limit":100000}`, CodeBadField, "h", "limit"},
		{"history bad with", `{"type":"history","ref":"h","with":"a b"}`, CodeBadID, "h", "ids use only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode(%.60q) = %#v, want error %s", tt.in, f, tt.code)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			if pe.Code != tt.code || pe.Ref != tt.ref || !strings.Contains(pe.Message, tt.contain) {
				t.Errorf("got code=%s ref=%q msg=%q; want code=%s ref=%q containing %q", pe.Code, pe.Ref, pe.Message, tt.code, tt.ref, tt.contain)
			}
		})
	}
}

func TestDecodeFrameTooLarge(t *testing.T) {
	l := Limits{MaxFrameBytes: 100}
	_, err := l.Decode([]byte(`{"type":"send","ref":"r","to":"A","body":"` + strings.Repeat("y", 200) + `"}`))
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeTooLarge {
		t.Fatalf("err = %v, want too_large", err)
	}
}

func TestRecipients(t *testing.T) {
	for in, want := range map[string]Recipients{
		`{"type":"send","ref":"r","body":"b","to":"*"}`:         {"*"},
		`{"type":"send","ref":"r","body":"b","to":"CC-2"}`:      {"CC-2"},
		`{"type":"send","ref":"r","body":"b","to":["A","B.c"]}`: {"A", "B.c"},
	} {
		f, err := Decode([]byte(in))
		if err != nil {
			t.Fatalf("Decode(%s): %v", in, err)
		}
		if got := f.(*Send).To; !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(%s).To = %v, want %v", in, got, want)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"CC-1", "CODEX", "a", "host.name-1234", "_x", strings.Repeat("a", 64)} {
		if err := ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q) = %v, want ok", ok, err)
		}
	}
	for _, bad := range []string{"", "*", "all", "All", "..", ".hidden", "-rf", "a/b", "a b", "é", strings.Repeat("a", 65), "a\x00"} {
		if err := ValidateID(bad); err == nil {
			t.Errorf("ValidateID(%q) = nil, want error", bad)
		}
	}
}

func TestShouldReconnect(t *testing.T) {
	for code, want := range map[int]bool{
		CloseNormal: true, CloseGoingAway: true, CloseHelloTimeout: true, CloseSlowConsumer: true, CloseIdle: true, 1006: true,
		CloseReplaced: false, CloseIDInUse: false, CloseUnauthorized: false, CloseForbiddenID: false, CloseBadHello: false, 4999: false,
	} {
		if got := ShouldReconnect(code); got != want {
			t.Errorf("ShouldReconnect(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestClientFrame(t *testing.T) {
	for _, ft := range Types() {
		if got, want := ClientFrame(ft.Name), ft.Dir&FromClient != 0; got != want {
			t.Errorf("ClientFrame(%q) = %v; its direction is %s", ft.Name, got, ft.Dir)
		}
	}
	if ClientFrame("teleport") {
		t.Error(`ClientFrame("teleport") = true`)
	}
}

// RefOf reads the ref of every frame type whose struct has one, and
// answers "" for the others. Every request a client sends and expects an
// answer to carries a ref, and so does its answer: a client matches the two
// by it (hello is answered before anything else can be).
func TestRefOf(t *testing.T) {
	for _, ft := range Types() {
		f := ft.New()
		field := reflect.ValueOf(f).Elem().FieldByName("Ref")
		want := ""
		if field.IsValid() && field.Kind() == reflect.String {
			want = "r-" + ft.Name
			field.SetString(want)
		}
		if ft.HasRef() != (want != "") {
			t.Errorf("%s: HasRef() = %v", ft.Name, ft.HasRef())
		}
		if got := RefOf(f); got != want {
			t.Errorf("RefOf(%T) = %q, want %q", f, got, want)
		}
		if ft.Answer != "" && ft.Name != TypeHello && (!ft.HasRef() || !LookupType(ft.Answer).HasRef()) {
			t.Errorf("%s is answered with %s, but the two do not both carry a ref to match them by", ft.Name, ft.Answer)
		}
	}
	if RefOf(nil) != "" || RefOf((*Send)(nil)) != "" {
		t.Error("RefOf of a nil frame is not empty")
	}
}
