package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Both stores keep the operator's holds the same way: one standing hold
// per pair in either order, the first record kept, a release recorded
// with who and when, the latest releases listed on request.
func TestHolds(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := k.open(t)
			put := func(a, b, by string, n int) bool {
				t.Helper()
				ok, err := s.PutHold(ctx, Hold{Pair: [2]string{a, b}, By: by, At: base.Add(secs(n))})
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			if !put("CC-2", "CC-1", "person.ana", 1) || !put("CC-1", "CC-3", "person.ana", 2) {
				t.Fatal("PutHold of a new pair reported it held already")
			}
			if put("CC-1", "CC-2", "person.bob", 3) {
				t.Error("PutHold of a held pair (the other order) reported a new hold")
			}
			want := []Hold{
				{Pair: [2]string{"CC-1", "CC-2"}, By: "person.ana", At: base.Add(secs(1))},
				{Pair: [2]string{"CC-1", "CC-3"}, By: "person.ana", At: base.Add(secs(2))},
			}
			holdsEq(t, s, 0, want)

			if ok, err := s.EndHold(ctx, [2]string{"CC-2", "CC-1"}, "person.bob", base.Add(secs(4))); !ok || err != nil {
				t.Fatalf("EndHold of a held pair = %v, %v", ok, err)
			}
			if ok, err := s.EndHold(ctx, [2]string{"CC-2", "CC-1"}, "person.bob", base.Add(secs(5))); ok || err != nil {
				t.Errorf("EndHold of a released pair = %v, %v; want false", ok, err)
			}
			holdsEq(t, s, 0, want[1:])
			released := want[0]
			released.ReleasedBy, released.ReleasedAt = "person.bob", base.Add(secs(4))
			holdsEq(t, s, 5, []Hold{released, want[1]})

			// Held again: a new record, the release of the first kept.
			put("CC-1", "CC-2", "person.cy", 6)
			again := Hold{Pair: [2]string{"CC-1", "CC-2"}, By: "person.cy", At: base.Add(secs(6))}
			holdsEq(t, s, 5, []Hold{released, want[1], again})
			holdsEq(t, s, 0, []Hold{want[1], again})
		})
	}
}

// Only the latest keptReleases releases are remembered.
func TestHoldsKeepTheLatestReleases(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := k.open(t)
			for i := range keptReleases + 5 {
				pair := [2]string{"A", fmt.Sprintf("B-%03d", i)}
				if _, err := s.PutHold(ctx, Hold{Pair: pair, By: "person.ana", At: base}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.EndHold(ctx, pair, "person.ana", base.Add(secs(i+1))); err != nil {
					t.Fatal(err)
				}
			}
			hs, err := s.Holds(ctx, 1000)
			if err != nil || len(hs) != keptReleases || hs[0].Pair[1] != "B-005" {
				t.Fatalf("Holds after %d releases: %d kept (first %v), %v; want the latest %d", keptReleases+5, len(hs), hs[0].Pair, err, keptReleases)
			}
		})
	}
}

// A hold on the SQLite store is there after a reopen: a restart of relayd
// keeps it.
func TestSQLiteHoldsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openSQLite(t, dir)
	h := Hold{Pair: [2]string{"CC-1", "CC-2"}, By: "person.ana", At: base}
	if _, err := s.PutHold(ctx, h); err != nil {
		t.Fatal(err)
	}
	s.Close()
	holdsEq(t, openSQLite(t, dir), 0, []Hold{h})
}

func holdsEq(t *testing.T, s Store, released int, want []Hold) {
	t.Helper()
	got, err := s.Holds(context.Background(), released)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Holds(%d):\n got %v\nwant %v", released, got, want)
	}
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }
