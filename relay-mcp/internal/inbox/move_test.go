package inbox

import (
	"path/filepath"
	"testing"
)

// A rename: the inbox switches to the new id's directory with its own
// resume point, unread mail of the old one comes along (read there, so the
// old id's inbox does not show it again), and the old directory keeps its
// own resume point for a session that comes back as the old id.
func TestSwitchDirAndTakeUnread(t *testing.T) {
	home := t.TempDir()
	oldDir, newDir := filepath.Join(home, "A"), filepath.Join(home, "A2")
	b, err := Open(oldDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Add(msg(1, "m1", "X"), msg(2, "m2", "X"), msg(3, "m3", "Y"))
	b.MarkRead("m1")
	changed := b.Changed()
	if err := b.SwitchDir(newDir); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Error("waiters were not told the inbox changed")
	}
	if b.Dir() != newDir || b.ResumeAfter() != 0 {
		t.Fatalf("after switch: dir %s resume %d", b.Dir(), b.ResumeAfter())
	}
	if total, _, _ := b.Counts(); total != 0 {
		t.Fatalf("new inbox holds %d", total)
	}
	b.Add(msg(1, "n1", "Z")) // the new id's mailbox numbers from 1

	old, err := Open(oldDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	old.Add(msg(4, "m4", "Y")) // in flight during the switch, taken by the drain
	moved, err := b.TakeUnread(old)
	if err != nil || moved != 3 {
		t.Fatalf("moved %d, %v; want m2 m3 m4", moved, err)
	}
	if b.ResumeAfter() != 1 {
		t.Fatalf("moved mail changed the new resume point to %d", b.ResumeAfter())
	}
	var got []string
	for _, e := range b.List(Query{}) {
		got = append(got, e.ID)
	}
	if len(got) != 4 || got[0] != "n1" {
		t.Fatalf("new inbox unread = %v", got)
	}
	if _, unread, _ := old.Counts(); unread != 0 || old.ResumeAfter() != 4 {
		t.Fatalf("old inbox: %d unread, resume %d; want 0 and its own 4", unread, old.ResumeAfter())
	}
	// Reopened from disk, both keep what they were.
	b.Close()
	again, _ := Open(newDir, Options{})
	defer again.Close()
	if _, unread, _ := again.Counts(); unread != 4 || again.ResumeAfter() != 1 {
		t.Fatalf("new inbox reopened: %d unread, resume %d", unread, again.ResumeAfter())
	}
}
