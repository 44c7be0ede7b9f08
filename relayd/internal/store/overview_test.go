package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestOverview: the console's views, on every store — the timeline
// filtered by peer, pair and thread and paged back; stages of any sender's
// messages; the oldest unread message per client.
func TestOverview(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) { testOverview(t, k.open(t)) })
	}
}

func testOverview(t *testing.T, s Store) {
	ctx := context.Background()
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	add := func(i int, from, to, thread string) {
		send(t, s, Message{ID: fmt.Sprintf("m%02d", i), From: from, To: []string{to}, Body: fmt.Sprint(i), TS: base.Add(time.Duration(i) * time.Second), Thread: thread})
	}
	add(1, "A", "B", "t1")
	add(2, "B", "A", "t1")
	add(3, "A", "C", "")
	add(4, "C", "B", "t2")
	add(5, "B", "A", "")
	ids := func(q TimelineQuery) (out []string, more bool) {
		t.Helper()
		ms, more, err := s.Timeline(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out, more
	}
	for _, tc := range []struct {
		q    TimelineQuery
		want string
		more bool
	}{
		{TimelineQuery{}, "[m01 m02 m03 m04 m05]", false},
		{TimelineQuery{Limit: 2}, "[m04 m05]", true},
		{TimelineQuery{Limit: 2, Before: "m04"}, "[m02 m03]", true},
		{TimelineQuery{Peer: "C"}, "[m03 m04]", false},
		{TimelineQuery{Peer: "A", With: "B"}, "[m01 m02 m05]", false},
		{TimelineQuery{Peer: "B", With: "C"}, "[m04]", false},
		{TimelineQuery{Thread: "t1"}, "[m01 m02]", false},
		{TimelineQuery{Peer: "C", Thread: "t2"}, "[m04]", false},
	} {
		got, more := ids(tc.q)
		if fmt.Sprint(got) != tc.want || more != tc.more {
			t.Errorf("Timeline(%+v) = %v more=%v, want %s more=%v", tc.q, got, more, tc.want, tc.more)
		}
	}

	// B acks m01 (its seq 1) and reads m04 (its seq 2); A reads nothing.
	if err := s.Ack(ctx, "B", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkRead(ctx, "B", []string{"m04"}, 0, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Stages(ctx, []string{"m01", "m04", "m02"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Receipt{}
	for _, r := range rs {
		got[r.MsgID+">"+r.To] = r
	}
	if r := got["m01>B"]; !r.DeliveredOK || !r.Read.IsZero() {
		t.Errorf("m01 to B: %+v, want delivered, not read", r)
	}
	if r := got["m04>B"]; !r.Read.Equal(base.Add(time.Minute)) {
		t.Errorf("m04 to B: %+v, want read at %v", r, base.Add(time.Minute))
	}
	if r := got["m02>A"]; r.DeliveredOK || !r.Read.IsZero() || !r.Stored.Equal(base.Add(2*time.Second)) {
		t.Errorf("m02 to A: %+v, want stored only", r)
	}
	old, err := s.OldestUnread(ctx, []string{"A", "B", "C", "Z"})
	if err != nil {
		t.Fatal(err)
	}
	if !old["A"].Equal(base.Add(2*time.Second)) || !old["B"].Equal(base.Add(1*time.Second)) || !old["C"].Equal(base.Add(3*time.Second)) {
		t.Errorf("oldest unread %v", old)
	}
	if _, ok := old["Z"]; ok {
		t.Errorf("Z has no mail but an oldest unread: %v", old["Z"])
	}
}
