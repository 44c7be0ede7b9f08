package server

import (
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

// A retry of a send still on its way to the disk (same sender, same ref,
// both submitted before the first commit) reaches every recipient once:
// a provisional client that takes what the relay's acks cover and acks it
// at once, and a client of the older protocol that is written messages
// before their commit. The next message is delivered once too, under a
// seq no copy of the first one held.
func TestRetryOfUncommittedSendDeliveredOnce(t *testing.T) {
	r := startRelayOn(t, "sqlite") // holdWriteLock holds SQLite's commits
	a, _ := r.connect("A", 0)
	p := r.connectProvisional("P", 0)
	old := r.connectLegacy("OLD", "")

	holdWriteLock(t, r.dir, 500*time.Millisecond)
	send := &protocol.Send{Ref: "r1", To: protocol.Recipients{"P", "OLD"}, Body: "hello"}
	a.send(send)
	// P holds the first attempt provisionally: it was submitted, and its
	// commit waits for the lock.
	first := expect[*protocol.Message](p)
	if !first.Provisional || first.Body != "hello" {
		t.Fatalf("P got %+v, want hello marked provisional", first)
	}
	held := map[uint64]*protocol.Message{first.Seq: first}
	a.send(send) // the retry, before the first commit
	acc1, acc2 := expect[*protocol.Accepted](a), expect[*protocol.Accepted](a)
	if acc1.ID != first.ID || acc2.ID != first.ID {
		t.Fatalf("accepted %s and %s, want both %s (the retry answered as the first)", acc1.ID, acc2.ID, first.ID)
	}
	a.send(&protocol.Send{Ref: "r2", To: protocol.Recipients{"P", "OLD"}, Body: "next"})
	if acc := expect[*protocol.Accepted](a); acc.ID == first.ID {
		t.Fatalf("the next message was answered with the first one's id %s", acc.ID)
	}

	// P as the protocol asks: a provisional message is its own only once
	// a relay ack covers it, acked at once; what is not covered when the
	// connection ends is dropped, and it resumes after what it took.
	var inbox []*protocol.Message
	ids, seqs := map[string]bool{}, map[uint64]string{}
	var took uint64
	deadline := time.Now().Add(2 * patience)
	take := func(m *protocol.Message) {
		if ids[m.ID] {
			t.Fatalf("P took message %s (%q) twice", m.ID, m.Body)
		}
		if prev, ok := seqs[m.Seq]; ok {
			t.Fatalf("P took seq %d for %s and again for %s", m.Seq, prev, m.ID)
		}
		ids[m.ID], seqs[m.Seq] = true, m.ID
		inbox = append(inbox, m)
		took = max(took, m.Seq)
		p.send(&protocol.Ack{Upto: took})
	}
	for len(inbox) < 2 || inbox[len(inbox)-1].Body != "next" {
		if time.Now().After(deadline) {
			t.Fatalf("P's inbox after %s: %d messages, the last not %q", 2*patience, len(inbox), "next")
		}
		f, err := p.read(patience)
		if err != nil { // closed (withdrawn copies): resume after what P took
			held = map[uint64]*protocol.Message{}
			p.ws.CloseNow()
			p = r.connectProvisional("P", took)
			continue
		}
		switch f := f.(type) {
		case *protocol.Message:
			if f.Provisional {
				held[f.Seq] = f
			} else {
				take(f)
			}
		case *protocol.Ack:
			for seq := took + 1; seq <= f.Upto; seq++ {
				if m := held[seq]; m != nil {
					take(m)
				}
			}
		}
	}
	var bodies []string
	for _, m := range inbox {
		bodies = append(bodies, m.Body)
	}
	if len(inbox) != 2 || inbox[0].ID != first.ID || inbox[0].Body != "hello" || inbox[1].Body != "next" {
		t.Fatalf("P's inbox %q, want hello (%s) then next, once each", bodies, first.ID)
	}

	// The older protocol's client is written what it gets at once.
	var got []string
	for len(got) == 0 || got[len(got)-1] != "next" {
		if len(got) > 3 {
			t.Fatalf("OLD got %q, want hello then next", got)
		}
		got = append(got, old.nextOfType("message")["content"].(string))
	}
	if len(got) != 2 || got[0] != "hello" {
		t.Fatalf("OLD got %q, want hello then next, once each", got)
	}
}
