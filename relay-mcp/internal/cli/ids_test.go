package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// Every way an id enters relay-mcp from the command line or the
// environment refuses a bad one with a usage error naming where it came
// from, before anything is written or sent: RELAY_URL points at a server
// that counts connection attempts, and must see none.
func TestBadIDsRefusedAtEveryEntry(t *testing.T) {
	var dials atomic.Int64
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		dials.Add(1)
		http.Error(w, "not a relay", http.StatusServiceUnavailable)
	}))
	defer relay.Close()
	t.Setenv("RELAY_URL", "ws"+strings.TrimPrefix(relay.URL, "http")+"/v1/ws")
	bad := []string{"../etc", "CC\x001", "CC 1", "CC-1\n", "all", "-rf", "ＣＣ-1", strings.Repeat("x", 65)}
	// How an id is given decides which bad ones can be tried: the OS
	// refuses NUL in the environment, and "-rf" as an argument is read as
	// a flag (refused by the flag parser before any id check).
	const (
		flagValue = iota
		envVar
		argument
	)
	entries := []struct {
		name string
		how  int
		env  string // the variable set to the bad id, for envVar
		args func(id string) []string
		says string
	}{
		{"CLAUDE_RELAY_SESSION_ID", envVar, EnvSessionID, func(string) []string { return nil }, EnvSessionID},
		{"RELAY_CLIENT_ID", envVar, EnvClientID, func(string) []string { return nil }, EnvClientID},
		{"--client-id", flagValue, "", func(id string) []string { return []string{"--client-id", id} }, "--client-id"},
		{"session register", argument, "", func(id string) []string { return []string{"session", "register", id} }, "bad id"},
		{"session remove", argument, "", func(id string) []string { return []string{"session", "remove", id} }, "bad id"},
		{"send --as", flagValue, "", func(id string) []string { return []string{"send", "--as", id, "CC-2", "hi"} }, "--as"},
		{"send recipient", argument, "", func(id string) []string { return []string{"send", "--as", "CC-1", id, "hi"} }, "bad recipient"},
		{"send --reply-to", flagValue, "", func(id string) []string { return []string{"send", "--as", "CC-1", "--reply-to", id, "CC-2", "hi"} }, "--reply-to"},
		{"receive --id", flagValue, "", func(id string) []string { return []string{"receive", "--id", id} }, "--id"},
		{"receive from the session env", envVar, EnvSessionID, func(string) []string { return []string{"receive"} }, "--id"},
		{"chat --id", flagValue, "", func(id string) []string { return []string{"chat", "--id", id} }, "--id"},
		{"chat from the session env", envVar, EnvSessionID, func(string) []string { return []string{"chat"} }, EnvSessionID},
		{"watch --for", flagValue, "", func(id string) []string { return []string{"watch", "--for", id, "--exec", "true"} }, "--for"},
		{"watch --as", flagValue, "", func(id string) []string { return []string{"watch", "--for", "CC-1", "--as", id, "--exec", "true"} }, "--as"},
	}
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			for _, id := range bad {
				switch {
				case e.how == envVar && strings.Contains(id, "\x00"),
					e.how == argument && id == "-rf",
					// A recipient list is typed by people: spaces around ids
					// are trimmed and "all" means everyone (see ParseTo).
					e.name == "send recipient" && (id == "CC-1\n" || id == "all"),
					// Message ids may start with '-' and may be "all".
					e.name == "send --reply-to" && (id == "all" || id == "-rf"):
					continue
				}
				parent := t.TempDir()
				home := filepath.Join(parent, "home")
				t.Setenv(EnvHome, home)
				t.Setenv(EnvSessionID, "")
				t.Setenv(EnvClientID, "")
				if e.how == envVar {
					t.Setenv(e.env, id)
				}
				code, out, errs := run(t, "/quit\n", e.args(id)...)
				if code != ExitUsage || !strings.Contains(errs, e.says) {
					t.Errorf("id %q: exit %d, stderr %q, stdout %q; want exit %d naming %s", id, code, errs, out, ExitUsage, e.says)
				}
				// Nothing landed outside RELAY_HOME (../etc would be parent/etc).
				if ls, _ := os.ReadDir(parent); len(ls) > 1 || (len(ls) == 1 && ls[0].Name() != "home") {
					t.Errorf("id %q: files appeared beside RELAY_HOME: %v", id, ls)
				}
			}
		})
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("%d connection attempts reached the relay; a bad id must be refused before dialing", n)
	}
}

// A registry file edited by hand (or by an older tool) with a bad id in it
// is not trusted: the bad entry never reaches a listing.
func TestRegistryFileWithBadID(t *testing.T) {
	home := t.TempDir()
	t.Setenv(EnvHome, home)
	dir := filepath.Join(home, "sessions")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "registry.json"), []byte(`{"version":1,"sessions":{"CC-1":{"id":"CC-1"},"../../etc":{"id":"../../etc"}}}`), 0o600)
	code, out, errs := run(t, "", "session", "list")
	if code != 0 || strings.Contains(out, "etc") {
		t.Fatalf("list: exit %d, out %q, err %q", code, out, errs)
	}
	if !strings.Contains(errs, "../../etc") || !strings.Contains(errs, "moved it aside") {
		t.Fatalf("no warning naming the bad entry: %q", errs)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, "registry.json.corrupt-*"))
	if len(aside) != 1 {
		t.Fatalf("the bad file was not kept for the user to inspect: %v", aside)
	}
}
