package registry

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestRegisterListRemove(t *testing.T) {
	r := Open(t.TempDir(), nil)
	if err := r.Register(Session{ID: "CC-1", PID: 10, Online: true}); err != nil {
		t.Fatal(err)
	}
	first, _ := r.List()
	if err := r.Register(Session{ID: "CC-1", PID: 11, Online: true}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetOffline("CC-1", 10); err != nil { // an older process: ignored
		t.Fatal(err)
	}
	ls, _ := r.List()
	if len(ls) != 1 || !ls[0].Online || ls[0].PID != 11 || !ls[0].RegisteredAt.Equal(first[0].RegisteredAt) {
		t.Fatalf("after re-register: %+v", ls)
	}
	r.SetOffline("CC-1", 11)
	ls, _ = r.List()
	if ls[0].Online {
		t.Fatal("still online")
	}
	if err := r.Register(Session{ID: "../x"}); err == nil {
		t.Fatal("bad id accepted")
	}
	if found, _ := r.Remove("CC-1"); !found {
		t.Fatal("remove: not found")
	}
	if found, _ := r.Remove("CC-1"); found {
		t.Fatal("removed twice")
	}
}

// Twenty writers at once, each with its own open of the lock file (as
// separate processes have), lose nothing.
func TestConcurrentWritersGoroutines(t *testing.T) {
	home := t.TempDir()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				if err := Open(home, nil).Register(Session{ID: fmt.Sprintf("S-%d-%d", i, j), PID: i}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	ls, err := Open(home, nil).List()
	if err != nil || len(ls) != 100 {
		t.Fatalf("got %d sessions (%v), want 100", len(ls), err)
	}
}

// The same with twenty real processes: this test binary re-executed.
func TestConcurrentWriterProcesses(t *testing.T) {
	if os.Getenv("REGISTRY_CHILD") != "" {
		t.Skip("child")
	}
	home := t.TempDir()
	var cmds []*exec.Cmd
	for i := range 20 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildWriter$")
		cmd.Env = append(os.Environ(), "REGISTRY_CHILD="+strconv.Itoa(i), "REGISTRY_HOME="+home)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	ls, err := Open(home, nil).List()
	if err != nil || len(ls) != 100 {
		t.Fatalf("got %d sessions (%v), want 100", len(ls), err)
	}
}

func TestChildWriter(t *testing.T) {
	n := os.Getenv("REGISTRY_CHILD")
	if n == "" {
		t.Skip("run by TestConcurrentWriterProcesses")
	}
	r := Open(os.Getenv("REGISTRY_HOME"), nil)
	for j := range 5 {
		if err := r.Register(Session{ID: "P-" + n + "-" + strconv.Itoa(j), PID: os.Getpid(), Online: true}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "sessions")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "registry.json"), []byte(`{"version":1,"sessions":{"CC-1":`), 0o600)
	var logs bytes.Buffer
	r := Open(home, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := r.Register(Session{ID: "CC-2"}); err != nil {
		t.Fatal(err)
	}
	ls, _ := r.List()
	if len(ls) != 1 || ls[0].ID != "CC-2" {
		t.Fatalf("sessions: %+v", ls)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, "registry.json.corrupt-*"))
	if len(aside) != 1 {
		t.Fatalf("corrupt file not kept aside: %v", aside)
	}
	if !strings.Contains(logs.String(), "moved it aside") {
		t.Fatalf("no warning logged: %s", logs.String())
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":1,"sessions":{"CC-1":{"id":"CC-1","pid":3,"online":true}}}`))
	f.Add([]byte(`{"sessions":{"../x":{}}}`))
	f.Add([]byte(`{"sessions":{"a":null}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"version":99}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Decode(data)
		if err != nil {
			return
		}
		for k, s := range file.Sessions {
			if s == nil || s.ID != k {
				t.Fatalf("entry %q decoded as %+v", k, s)
			}
		}
	})
}
