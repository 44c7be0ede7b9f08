package inbox

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/claude-relay/claude-relay/protocol"
)

// FuzzLog drives an inbox through receives, reads, restarts and clears
// while the log on disk is damaged between runs the ways a crash or a bad
// disk damages it: a torn last line, a garbage line, the last line written
// twice, the last two messages written in the other order. Whatever the
// damage, a message acked to the relay (added, then synced) is still there
// after a restart unless the agent cleared it, and a message the agent was
// shown (marked read) is never listed as unread again.
func FuzzLog(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 7, 0, 2, 6})
	f.Add([]byte{0, 2, 2, 40, 0, 1, 6, 1, 5, 0, 3})
	f.Add([]byte{0, 4, 4, 1, 3, 9, 0, 2, 5, 6, 7, 0, 1, 6})
	f.Add([]byte{0, 5, 1, 4, 2, 3, 0, 1, 8, 6, 0, 2, 1, 6})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 200 {
			ops = ops[:200]
		}
		dir := t.TempDir()
		logPath := filepath.Join(dir, "messages.jsonl")
		var b *Inbox
		open := func() {
			if b != nil {
				return
			}
			var err error
			if b, err = Open(dir, Options{Limit: 10000}); err != nil {
				t.Fatal(err)
			}
		}
		closeIt := func() {
			if b != nil {
				b.Close()
				b = nil
			}
		}
		defer closeIt()
		acked := map[string]bool{} // received and synced: the relay forgot it
		shown := map[string]bool{} // marked read: the agent saw it
		cleared := map[string]bool{}
		next, seq := 0, uint64(0)
		var seqOf []uint64
		arg := func(i *int) int {
			*i++
			if *i < len(ops) {
				return int(ops[*i])
			}
			return 0
		}
		lines := func() [][]byte {
			data, _ := os.ReadFile(logPath)
			if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
				data = data[:i+1]
			} else {
				data = nil
			}
			return bytes.SplitAfter(data, []byte("\n"))
		}
		appendRaw := func(p []byte) {
			fh, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			fh.Write(p)
			fh.Close()
		}
		for i := 0; i < len(ops); i++ {
			switch ops[i] % 8 {
			case 0: // receive a batch, new and resent messages in any order, then ack
				open()
				n := arg(&i)%5 + 1
				var batch []protocol.Message
				for k := 0; k < n; k++ {
					// A resend keeps its seq. One the agent cleared is
					// not resent: the cursor kept by the clear is past it.
					if r := arg(&i); r%3 == 0 && next > 0 && !cleared[fmt.Sprintf("m%d", r%next)] {
						batch = append(batch, msg(seqOf[r%next], fmt.Sprintf("m%d", r%next), "X"))
					} else {
						seq++
						seqOf = append(seqOf, seq)
						batch = append(batch, msg(seq, fmt.Sprintf("m%d", next), "X"))
						next++
					}
				}
				if _, err := b.Add(batch...); err != nil {
					t.Fatal(err)
				}
				if err := b.Sync(); err != nil {
					t.Fatal(err)
				}
				for _, m := range batch {
					acked[m.ID] = true
				}
			case 1: // relay_receive: show some unread mail and mark it read
				open()
				un := b.List(Query{Limit: arg(&i)%4 + 1})
				var read []string
				for _, e := range un {
					if shown[e.ID] {
						t.Fatalf("%s shown twice", e.ID)
					}
					shown[e.ID] = true
					read = append(read, e.ID)
				}
				if err := b.MarkRead(read...); err != nil {
					t.Fatal(err)
				}
			case 2: // crash in the middle of an append: a torn line
				closeIt()
				rec := fmt.Sprintf(`{"msg":{"seq":%d,"id":"torn%d","from":"X","body":"b"},"at":"2026-01-01T00:00:00Z"}`, seq+1, i)
				appendRaw([]byte(rec[:arg(&i)%len(rec)]))
			case 3: // a garbage line
				closeIt()
				n := arg(&i) % 16
				g := []byte{0}
				for k := 0; k < n; k++ {
					if c := byte(arg(&i)); c != '\n' {
						g = append(g, c)
					}
				}
				appendRaw(append(g, '\n'))
			case 4: // the last line written twice
				closeIt()
				if ls := lines(); len(ls) > 0 && len(ls[len(ls)-1]) > 0 {
					appendRaw(ls[len(ls)-1])
				} else if len(ls) > 1 {
					appendRaw(ls[len(ls)-2])
				}
			case 5: // the last two messages written in the other order
				closeIt()
				data, _ := os.ReadFile(logPath)
				ls := bytes.SplitAfter(data, []byte("\n"))
				if len(ls) >= 3 && len(ls[len(ls)-1]) == 0 &&
					bytes.HasPrefix(ls[len(ls)-2], []byte(`{"msg"`)) && bytes.HasPrefix(ls[len(ls)-3], []byte(`{"msg"`)) {
					ls[len(ls)-2], ls[len(ls)-3] = ls[len(ls)-3], ls[len(ls)-2]
					os.WriteFile(logPath, bytes.Join(ls, nil), 0o600)
				}
			case 6: // restart
				closeIt()
				open()
			case 7: // relay_clear_history: forget read mail
				open()
				for _, e := range b.List(Query{IncludeRead: true}) {
					if e.Read {
						cleared[e.ID] = true
					}
				}
				if _, err := b.Clear(false); err != nil {
					t.Fatal(err)
				}
			}
		}
		closeIt()
		open()
		all := b.List(Query{IncludeRead: true})
		held := map[string]Entry{}
		for _, e := range all {
			if _, dup := held[e.ID]; dup {
				t.Fatalf("%s held twice", e.ID)
			}
			held[e.ID] = e
		}
		for id := range acked {
			e, ok := held[id]
			if !ok && !cleared[id] {
				t.Fatalf("acked %s lost; held %v", id, slices.Sorted(maps.Keys(held)))
			}
			if ok && shown[id] && !e.Read {
				t.Fatalf("%s was shown and is unread again", id)
			}
		}
	})
}
