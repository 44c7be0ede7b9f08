package store

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"iter"
	"slices"
	"strconv"

	"github.com/claude-relay/claude-relay/protocol"
)

// The journal file is a sequence of records, each
//
//	length  uint32, little endian: of kind and body
//	crc     uint32, little endian: CRC-32C of kind and body
//	kind    one byte: what the record does (rec* below)
//	body    JSON
//
// A record is written whole by one write(2) with the others of its batch,
// so a crash leaves at most a torn last record, which the next open cuts
// off. JSON keeps the file readable with a hex dump and lets later
// versions add fields; the framing keeps a damaged byte from passing as
// data.
const recHeader = 8

// maxRecord bounds a record's length field: a message body is bounded by
// the protocol, and a snapshot's mailbox record by what a mailbox holds. A
// larger length is damage, not data.
const maxRecord = 256 << 20

// Record kinds. The first group is what the store's writes log; the second
// only appears in a snapshot (journal_replay.go), which states the
// result of many writes at once.
const (
	recSubmit  byte = 'S'
	recAck     byte = 'A'
	recRead    byte = 'R'
	recTouch   byte = 'T'
	recClear   byte = 'C'
	recPrune   byte = 'P'
	recHold    byte = 'H'
	recEndHold byte = 'E'

	recMessage byte = 'M' // snapshot: a message and who cleared it
	recBox     byte = 'B' // snapshot: a mailbox and its entries
	recRef     byte = 'F' // snapshot: one send ref of a sender's window
	recHolds   byte = 'L' // snapshot: the whole hold list
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// jMsg is a Message as the journal holds it: times in unix nanoseconds.
type jMsg struct {
	ID      string   `json:"id"`
	From    string   `json:"from"`
	To      []string `json:"to"`
	Body    string   `json:"body"`
	TS      int64    `json:"ts"`
	ReplyTo string   `json:"reply_to,omitempty"`
	Thread  string   `json:"thread,omitempty"`
}

func toJMsg(m *Message) jMsg {
	return jMsg{ID: m.ID, From: m.From, To: m.To, Body: m.Body, TS: nanos(m.TS), ReplyTo: m.ReplyTo, Thread: m.Thread}
}

func (m jMsg) message() Message {
	return Message{ID: m.ID, From: m.From, To: m.To, Body: m.Body, TS: fromNanos(m.TS), ReplyTo: m.ReplyTo, Thread: m.Thread}
}

// jSubmit is a stored send: the message, its recipients and the seq each
// got (0: the mailbox was full), and the sender's ref when it gave one.
type jSubmit struct {
	Msg        jMsg     `json:"m"`
	Recipients []string `json:"r"`
	Seqs       []uint64 `json:"s"`
	Ref        string   `json:"ref,omitempty"`
	Digest     []byte   `json:"dg,omitempty"`
}

type jAck struct {
	ID   string `json:"id"`
	Upto uint64 `json:"upto"`
	At   int64  `json:"at"`
}

type jRead struct {
	Client string   `json:"client"`
	IDs    []string `json:"ids,omitempty"`
	Upto   uint64   `json:"upto,omitempty"`
	At     int64    `json:"at"`
}

type jTouch struct {
	ID        string `json:"id"`
	Host      string `json:"host,omitempty"`
	PID       int    `json:"pid,omitempty"`
	Cwd       string `json:"cwd,omitempty"`
	Agent     string `json:"agent,omitempty"`
	Label     string `json:"label,omitempty"`
	FirstSeen int64  `json:"first,omitempty"`
	LastSeen  int64  `json:"last,omitempty"`
}

func toJTouch(s SessionInfo) jTouch {
	return jTouch{ID: s.ID, Host: s.Host, PID: s.PID, Cwd: s.Cwd, Agent: s.Agent, Label: s.Label,
		FirstSeen: nanos(s.FirstSeen), LastSeen: nanos(s.LastSeen)}
}

func (t jTouch) session() SessionInfo {
	return SessionInfo{ID: t.ID, Host: t.Host, PID: t.PID, Cwd: t.Cwd, Agent: t.Agent, Label: t.Label,
		FirstSeen: fromNanos(t.FirstSeen), LastSeen: fromNanos(t.LastSeen)}
}

type jClear struct {
	ID     string `json:"id"`
	Unread bool   `json:"unread,omitempty"`
}

type jPrune struct {
	Before int64 `json:"before"`
}

type jHold struct {
	Pair       [2]string `json:"pair"`
	By         string    `json:"by"`
	At         int64     `json:"at"`
	ReleasedBy string    `json:"rby,omitempty"`
	ReleasedAt int64     `json:"rat,omitempty"`
}

func toJHold(h Hold) jHold {
	return jHold{Pair: h.Pair, By: h.By, At: nanos(h.At), ReleasedBy: h.ReleasedBy, ReleasedAt: nanos(h.ReleasedAt)}
}

func (h jHold) hold() Hold {
	return Hold{Pair: h.Pair, By: h.By, At: fromNanos(h.At), ReleasedBy: h.ReleasedBy, ReleasedAt: fromNanos(h.ReleasedAt)}
}

type jEndHold struct {
	Pair [2]string `json:"pair"`
	By   string    `json:"by"`
	At   int64     `json:"at"`
}

// Snapshot records.

type jMessage struct {
	Msg    jMsg     `json:"m"`
	Hidden []string `json:"hidden,omitempty"` // clients that cleared it from their history
}

type jBox struct {
	ID          string     `json:"id"`
	Last        uint64     `json:"last"`
	Acked       uint64     `json:"acked"`
	ReadThrough uint64     `json:"rt,omitempty"`
	LastRead    int64      `json:"lr,omitempty"`
	Entries     []jBoxItem `json:"e,omitempty"`
}

// jBoxItem is one mailbox entry: seq, message id, delivered and read
// times (unix ns, 0 for not yet), as a JSON array to keep snapshots small.
type jBoxItem struct {
	Seq       uint64
	Msg       string
	Delivered int64
	Read      int64
}

func (e jBoxItem) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{e.Seq, e.Msg, e.Delivered, e.Read})
}

func (e *jBoxItem) UnmarshalJSON(b []byte) error {
	var a []json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 4 {
		return fmt.Errorf("mailbox entry has %d fields, want 4", len(a))
	}
	for i, dst := range []any{&e.Seq, &e.Msg, &e.Delivered, &e.Read} {
		if err := json.Unmarshal(a[i], dst); err != nil {
			return err
		}
	}
	return nil
}

type jRef struct {
	Client string   `json:"client"`
	Ref    string   `json:"ref"`
	Digest []byte   `json:"dg"`
	ID     string   `json:"id"`
	TS     int64    `json:"ts"`
	To     []string `json:"to"`
	Seqs   []uint64 `json:"s"`
}

type jHolds struct {
	List []jHold `json:"list"`
}

// appendRecord appends one framed record of kind with body v to dst.
func appendRecord(dst []byte, kind byte, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("encode journal record %q: %w", kind, err)
	}
	n := 1 + len(body)
	start := len(dst)
	dst = append(dst, make([]byte, recHeader)...)
	dst = append(dst, kind)
	dst = append(dst, body...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+recHeader:], castagnoli))
	return dst, nil
}

// appendSubmitRecord appends the record of a send: what appendRecord makes
// of its jSubmit, byte for byte (TestFastRecordsAsJSON), written without
// reflection since every send makes one.
func appendSubmitRecord(dst []byte, msg *Message, recipients []string, slots []Slot, ref *SendRef) []byte {
	dst, start := beginRecord(dst, recSubmit)
	dst = append(dst, `{"m":`...)
	dst = appendJMsg(dst, toJMsg(msg))
	dst = append(dst, `,"r":`...)
	dst = appendJSONStrings(dst, recipients)
	dst = append(dst, `,"s":[`...)
	for i, sl := range slots {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendUint(dst, sl.Seq, 10)
	}
	dst = append(dst, ']')
	if ref != nil {
		if ref.Ref != "" {
			dst = append(dst, `,"ref":`...)
			dst = protocol.AppendJSONString(dst, ref.Ref, true)
		}
		dst = append(dst, `,"dg":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, ref.Digest[:])
		dst = append(dst, '"')
	}
	dst = append(dst, '}')
	return endRecord(dst, start)
}

// appendMessageRecord and appendBoxRecord append a snapshot's records of a
// message and of a mailbox as appendRecord does (TestFastRecordsAsJSON),
// without reflection: a snapshot holds one of each per retained message.
func appendMessageRecord(dst []byte, r *jMessage) []byte {
	dst, start := beginRecord(dst, recMessage)
	dst = append(dst, `{"m":`...)
	dst = appendJMsg(dst, r.Msg)
	if len(r.Hidden) > 0 {
		dst = append(dst, `,"hidden":`...)
		dst = appendJSONStrings(dst, r.Hidden)
	}
	dst = append(dst, '}')
	return endRecord(dst, start)
}

func appendBoxRecord(dst []byte, r *jBox) []byte {
	return appendBoxRecordOf(dst, r, slices.Values(r.Entries))
}

// appendBoxRecordOf is appendBoxRecord with the entries read from entries
// (r.Entries is not looked at): a compaction writes a mailbox's entries
// from the blocks it took, where a slice of them all was the largest
// allocation a snapshot made (19 MB at 400 000 messages in one mailbox).
func appendBoxRecordOf(dst []byte, r *jBox, entries iter.Seq[jBoxItem]) []byte {
	dst, start := beginRecord(dst, recBox)
	dst = append(dst, `{"id":`...)
	dst = protocol.AppendJSONString(dst, r.ID, true)
	dst = append(dst, `,"last":`...)
	dst = strconv.AppendUint(dst, r.Last, 10)
	dst = append(dst, `,"acked":`...)
	dst = strconv.AppendUint(dst, r.Acked, 10)
	if r.ReadThrough != 0 {
		dst = append(dst, `,"rt":`...)
		dst = strconv.AppendUint(dst, r.ReadThrough, 10)
	}
	if r.LastRead != 0 {
		dst = append(dst, `,"lr":`...)
		dst = strconv.AppendInt(dst, r.LastRead, 10)
	}
	first := true
	for e := range entries {
		if first {
			dst = append(dst, `,"e":[`...)
			first = false
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = strconv.AppendUint(dst, e.Seq, 10)
		dst = append(dst, ',')
		dst = protocol.AppendJSONString(dst, e.Msg, true)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, e.Delivered, 10)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, e.Read, 10)
		dst = append(dst, ']')
	}
	if !first {
		dst = append(dst, ']')
	}
	dst = append(dst, '}')
	return endRecord(dst, start)
}

// appendJMsg appends m as json.Marshal does.
func appendJMsg(dst []byte, m jMsg) []byte {
	dst = append(dst, `{"id":`...)
	dst = protocol.AppendJSONString(dst, m.ID, true)
	dst = append(dst, `,"from":`...)
	dst = protocol.AppendJSONString(dst, m.From, true)
	dst = append(dst, `,"to":`...)
	dst = appendJSONStrings(dst, m.To)
	dst = append(dst, `,"body":`...)
	dst = protocol.AppendJSONString(dst, m.Body, true)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, m.TS, 10)
	if m.ReplyTo != "" {
		dst = append(dst, `,"reply_to":`...)
		dst = protocol.AppendJSONString(dst, m.ReplyTo, true)
	}
	if m.Thread != "" {
		dst = append(dst, `,"thread":`...)
		dst = protocol.AppendJSONString(dst, m.Thread, true)
	}
	return append(dst, '}')
}

// beginRecord appends a record's header, to be filled by endRecord, and its
// kind, and returns where the record starts.
func beginRecord(dst []byte, kind byte) ([]byte, int) {
	start := len(dst)
	dst = append(dst, make([]byte, recHeader)...)
	return append(dst, kind), start
}

// endRecord fills in the header of the record that starts at start: its
// length and its checksum.
func endRecord(dst []byte, start int) []byte {
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-recHeader))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+recHeader:], castagnoli))
	return dst
}

// appendJSONStrings appends ss as json.Marshal does: null when nil.
func appendJSONStrings(dst []byte, ss []string) []byte {
	if ss == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = protocol.AppendJSONString(dst, s, true)
	}
	return append(dst, ']')
}

// errTorn reports a record cut short by the end of the data: what a crash
// in the middle of a write leaves.
var errTorn = errors.New("record cut short")

// nextRecord decodes the record at the start of b: its kind, its body and
// the bytes it took. It returns errTorn when b ends inside the record, and
// another error when the bytes are not a record.
func nextRecord(b []byte) (kind byte, body []byte, size int, err error) {
	if len(b) < recHeader {
		return 0, nil, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxRecord {
		return 0, nil, 0, fmt.Errorf("record length %d out of range", n)
	}
	if len(b)-recHeader < int(n) {
		return 0, nil, 0, errTorn
	}
	rec := b[recHeader : recHeader+int(n)]
	if got, want := crc32.Checksum(rec, castagnoli), binary.LittleEndian.Uint32(b[4:]); got != want {
		return 0, nil, 0, fmt.Errorf("record checksum %08x, want %08x", got, want)
	}
	return rec[0], rec[1:], recHeader + int(n), nil
}
