package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var entry = Entry{Command: "/bin/relay-mcp", Args: []string{}, Env: map[string]string{"RELAY_URL": "ws://h:1/v1/ws"}}

func TestEditTOMLTable(t *testing.T) {
	cases := []struct{ name, in, want, err string }{
		{"empty file", "", "[mcp_servers.relay]\ncommand = \"/bin/relay-mcp\"\nargs = []\n\n[mcp_servers.relay.env]\nRELAY_URL = \"ws://h:1/v1/ws\"\n", ""},
		{"quoted header, no final newline",
			"[mcp_servers.\"relay\"]\ncommand = \"old\"\n[other]\nx = 1",
			"[mcp_servers.relay]\ncommand = \"/bin/relay-mcp\"\nargs = []\n\n[mcp_servers.relay.env]\nRELAY_URL = \"ws://h:1/v1/ws\"\n[other]\nx = 1", ""},
		{"a header inside a multi-line string is text",
			"notes = \"\"\"\n[mcp_servers.relay]\n\"\"\"\n",
			"notes = \"\"\"\n[mcp_servers.relay]\n\"\"\"\n\n[mcp_servers.relay]\ncommand = \"/bin/relay-mcp\"\nargs = []\n\n[mcp_servers.relay.env]\nRELAY_URL = \"ws://h:1/v1/ws\"\n", ""},
		{"subtable before its table", "[mcp_servers.relay.env]\nA = \"1\"\n", "", "appears before"},
		{"dotted keys", "mcp_servers.relay.command = \"x\"\n", "", "defined inline or with dotted keys"},
		{"not TOML", "= nope", "", "not valid TOML"},
	}
	for _, c := range cases {
		got, err := EditTOMLTable([]byte(c.in), "mcp_servers.relay", entry)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%s: %v\n%q\nwant\n%q", c.name, err, got, c.want)
		}
	}
}

func TestObjectKeepsOrderAndValues(t *testing.T) {
	in := `{"b": 1.50, "a": {"x": [1, 2]}, "big": 12345678901234567890123, "s": "\u00e9"}`
	out, err := EditJSON([]byte(in), map[string]string{"command": "c"}, "a", "relay")
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"b\": 1.50,\n  \"a\": {\n    \"x\": [\n      1,\n      2\n    ],\n    \"relay\": {\n      \"command\": \"c\"\n    }\n  },\n  \"big\": 12345678901234567890123,\n  \"s\": \"\\u00e9\"\n}\n"
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	for _, bad := range []string{`[]`, `{"a":1} {}`, `{"a":`, `nul`} {
		if _, err := EditJSON([]byte(bad), 1, "k"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// UpdateFile writes through a symlink (a dotfiles checkout) and keeps it.
func TestUpdateFileFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "mcp.json")
	os.MkdirAll(filepath.Dir(real), 0o700)
	os.WriteFile(real, []byte("{}\n"), 0o644)
	link := filepath.Join(dir, "mcp.json")
	if err := os.Symlink(real, link); err != nil {
		t.Skip(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	res, err := UpdateFile(link, now, func(old []byte) ([]byte, error) { return EditJSON(old, 1, "k") })
	if err != nil || !res.Changed || res.Backup != real+".bak-20260102-030405" {
		t.Fatalf("%+v %v", res, err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the symlink was replaced by a file")
	}
	if b, _ := os.ReadFile(real); string(b) != "{\n  \"k\": 1\n}\n" {
		t.Fatalf("target: %s", b)
	}
	// A second backup in the same second gets its own name.
	res, err = UpdateFile(link, now, func(old []byte) ([]byte, error) { return EditJSON(old, 2, "k") })
	if err != nil || res.Backup != real+".bak-20260102-030405-1" {
		t.Fatalf("%+v %v", res, err)
	}
}
