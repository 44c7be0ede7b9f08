package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
)

// docs/operations.md's backup: sqlite3 .backup of a running relay's store
// gives a copy that opens with every queued message (checked as the docs
// say, with relayd doctor --data-dir).
func TestStoreBackupWhileRunning(t *testing.T) {
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("sqlite3 not found: the documented backup command is not exercised here")
	}
	doctorEnv(t)
	dir, backup := t.TempDir(), t.TempDir()
	addr, _, stop := serveInProcess(t, "--data-dir", dir)
	defer stop()
	dialClient(t, addr, "CC-2").ws.Close(websocket.StatusNormalClosure, "")
	// CC-2 must be known and gone before the sends, or they are delivered.
	testkit.WaitFor(t, 5*time.Second, "CC-2 offline after closing", func() bool {
		var h struct {
			Online int `json:"peers_online"`
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
		}
		return err == nil && h.Online == 0
	})
	a := dialClient(t, addr, "CC-1")
	for i := range 2 {
		a.send(&protocol.Send{Ref: fmt.Sprint("r", i), To: protocol.Recipients{"CC-2"}, Body: "kept for CC-2"})
		if acc := a.expect(protocol.TypeAccepted).(*protocol.Accepted); acc.Recipients[0].Status != protocol.StatusQueued {
			t.Fatalf("send: %+v", acc.Recipients)
		}
	}
	// The command of the docs, with the paths of this test.
	out, err := exec.Command(sqlite3, filepath.Join(dir, "relay.db"), ".backup '"+filepath.Join(backup, "relay.db")+"'").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 .backup while relayd runs: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(backup, "relay.db")); err != nil {
		t.Fatal(err)
	}
	code, report := doctorLines(t, "--data-dir", backup, "--port", "1")
	if !strings.Contains(report, "opens: 2 sessions known, 2 unread messages") {
		t.Errorf("the backup does not hold the queued mail (doctor exit %d)", code)
	}
}
