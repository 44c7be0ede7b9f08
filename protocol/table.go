package protocol

import (
	"reflect"
	"strings"
)

// Direction says who may send frames of a type.
type Direction uint8

const (
	FromClient Direction = 1 << iota // client → relay
	FromRelay                        // relay → client
	Both       = FromClient | FromRelay
)

// String writes d as docs/protocol.md does: C→R, R→C or both.
func (d Direction) String() string {
	switch d {
	case FromClient:
		return "C→R"
	case FromRelay:
		return "R→C"
	case Both:
		return "both"
	}
	return "none"
}

// FrameType describes one frame type of protocol v1.
type FrameType struct {
	Name string    // the frame's "type" field; its Go type's Type method returns it
	Dir  Direction // who may send it; a client sending an R→C type gets CodeUnexpected
	// Answer is the type the relay answers a client's frame of this type
	// with (besides error), "" for none.
	Answer string
	// New returns an empty frame of the type, for the decoder.
	New func() Frame
	// ref is the index of the Go type's string field "ref", or -1: a frame
	// carries a ref when its struct has that field, nothing else says so.
	ref int
}

// Notice is implemented by relay → client frames that tell a client how
// things stand for it until a later notice on the same subject says
// otherwise (the operator held the pair it is in, …). Clients show the
// newest notice of each subject to their user without knowing the frame
// type — relay-mcp lists them in relay_status and in relay_send's result —
// and relayd tells a client that connects later the notices standing for
// its id. So a new informational frame is its entry in frameTypes, its
// struct with these two methods, and the relay code that sends it.
type Notice interface {
	Frame
	// NoticeSubject names what the notice is about: a later notice with
	// the same subject replaces it.
	NoticeSubject() string
	// NoticeText is what to tell the client's user; "" withdraws the
	// subject's earlier notice.
	NoticeText() string
}

// HasRef reports whether frames of the type carry a "ref": a request's
// ref, echoed in its answer or error.
func (t *FrameType) HasRef() bool { return t.ref >= 0 }

// newOf returns a new *T as a Frame.
func newOf[T any, P interface {
	*T
	Frame
}]() Frame {
	return P(new(T))
}

var (
	byName   = map[string]*FrameType{}
	allTypes []string // the names, in the table's order
)

func init() {
	for i := range frameTypes {
		t := &frameTypes[i]
		f := t.New()
		if f.Type() != t.Name || byName[t.Name] != nil || t.Dir == 0 {
			panic("protocol: frame table entry " + t.Name + " is wrong: its Type() is " + f.Type() + ", or it is listed twice, or has no direction")
		}
		t.ref = -1
		st := reflect.TypeOf(f).Elem()
		for j := range st.NumField() {
			if name, _, _ := strings.Cut(st.Field(j).Tag.Get("json"), ","); name == "ref" && st.Field(j).Type.Kind() == reflect.String {
				t.ref = j
			}
		}
		byName[t.Name] = t
		allTypes = append(allTypes, t.Name)
	}
}

// Types returns the frame types of protocol v1, in the order
// docs/protocol.md lists them.
func Types() []FrameType { return frameTypes }

// LookupType returns the frame type named name, or nil.
func LookupType(name string) *FrameType { return byName[name] }

// newFrame returns an empty frame of the named type, or nil.
func newFrame(name string) Frame {
	if t := byName[name]; t != nil {
		return t.New()
	}
	return nil
}

// ClientFrame reports whether frames of type typ may be sent by a client.
func ClientFrame(typ string) bool {
	t := byName[typ]
	return t != nil && t.Dir&FromClient != 0
}

// RefOf returns the ref a frame carries (a request's, or the one its
// answer echoes), or "".
func RefOf(f Frame) string {
	if f == nil {
		return ""
	}
	t := byName[f.Type()]
	if t == nil || t.ref < 0 {
		return ""
	}
	v := reflect.ValueOf(f)
	if v.IsNil() {
		return ""
	}
	return v.Elem().Field(t.ref).String()
}
