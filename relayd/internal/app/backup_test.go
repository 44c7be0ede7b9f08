package app

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
)

// docs/operations.md's backups, taken while relayd runs: a copy of the
// journal (cp), and sqlite3 .backup of the SQLite store, each open with
// every queued message (checked as the docs say, with relayd doctor
// --data-dir).
func TestStoreBackupWhileRunning(t *testing.T) {
	t.Run("journal", func(t *testing.T) {
		backupWhileRunning(t, "journal", func(t *testing.T, dir, backup string) {
			b, err := os.ReadFile(filepath.Join(dir, "relay.journal")) // cp
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(backup, "relay.journal"), b, 0o600); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("sqlite", func(t *testing.T) {
		sqlite3, err := exec.LookPath("sqlite3")
		if err != nil {
			t.Skip("sqlite3 not found: the documented backup command is not exercised here")
		}
		backupWhileRunning(t, "sqlite", func(t *testing.T, dir, backup string) {
			// The command of the docs, with the paths of this test.
			out, err := exec.Command(sqlite3, filepath.Join(dir, "relay.db"), ".backup '"+filepath.Join(backup, "relay.db")+"'").CombinedOutput()
			if err != nil {
				t.Fatalf("sqlite3 .backup while relayd runs: %v\n%s", err, out)
			}
		})
	})
}

// backupWhileRunning queues two messages in a relayd serving the store
// kind, takes a backup with take while it runs, and checks with relayd
// doctor that the backup holds them.
func backupWhileRunning(t *testing.T, kind string, take func(t *testing.T, dir, backup string)) {
	doctorEnv(t)
	dir, backup := t.TempDir(), t.TempDir()
	addr, _, stop := serveInProcess(t, "--data-dir", dir, "--store", kind)
	defer stop()
	dialClient(t, addr, "CC-2").ws.Close(websocket.StatusNormalClosure, "")
	waitOnline(t, addr, 0) // CC-2 known and gone before the sends, or they are delivered
	a := dialClient(t, addr, "CC-1")
	for i := range 2 {
		a.send(&protocol.Send{Ref: fmt.Sprint("r", i), To: protocol.Recipients{"CC-2"}, Body: "kept for CC-2"})
		if acc := a.expect(protocol.TypeAccepted).(*protocol.Accepted); acc.Recipients[0].Status != protocol.StatusQueued {
			t.Fatalf("send: %+v", acc.Recipients)
		}
	}
	take(t, dir, backup)
	code, report := doctorLines(t, "--data-dir", backup, "--port", "1")
	if !strings.Contains(report, "opens: 2 sessions known, 2 unread messages") {
		t.Errorf("the backup does not hold the queued mail (doctor exit %d):\n%s", code, report)
	}
}
