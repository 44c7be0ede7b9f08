package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// The network recipe end to end, with both real binaries: relayd serves
// wss:// with a certificate from a private CA and per-identity tokens made
// by `relayd token new`; relay-mcp reaches it with --ca-file (RELAY_CA_FILE)
// and its token from RELAY_TOKEN or RELAY_TOKEN_FILE. Each way of getting
// it wrong stops with a status that names the fix.
func TestE2ETLSAndPerIdentityTokens(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := testkit.WriteTestCA(t, dir)
	tok1, line1 := newToken(t, "CC-1")
	tok2, line2 := newToken(t, "CC-2")
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte(line1+"\n"+line2+"\n"), 0o600)
	tokFile := filepath.Join(dir, "cc2-token")
	os.WriteFile(tokFile, []byte(tok2+"\n"), 0o600)

	r := relaytest.Start(t, "--store", "memory", "--tls-cert", cert, "--tls-key", key, "--tokens-file", tokens)
	url := "wss://" + r.Addr
	home := t.TempDir()

	a := spawnAgent(t, url, "CC-1", home, "RELAY_TOKEN="+tok1, "RELAY_CA_FILE="+ca)
	b := spawnAgent(t, url, "CC-2", home, "RELAY_TOKEN=", "RELAY_TOKEN_FILE="+tokFile, "RELAY_CA_FILE="+ca)
	a.waitState(t, "connected")
	b.waitState(t, "connected")
	if txt, _ := a.call(t, "relay_send", map[string]any{"to": "CC-2", "message": "over wss with my own token"}); !strings.Contains(txt, "CC-2: delivered") {
		t.Fatalf("send: %s", txt)
	}
	if got := b.bodies(t, 1); len(got) != 1 || got[0] != "over wss with my own token" {
		t.Fatalf("CC-2 got %q", got)
	}

	for _, tc := range []struct {
		name, id string
		env      []string
		state    string
		says     []string
	}{
		{"another id's token", "CC-3", []string{"RELAY_TOKEN=" + tok1, "RELAY_CA_FILE=" + ca}, "stopped", []string{"may claim only CC-1"}},
		{"a made-up token", "CC-3", []string{"RELAY_TOKEN=made-up", "RELAY_CA_FILE=" + ca}, "stopped", []string{"refused the token", "RELAY_TOKEN"}},
		{"no token", "CC-3", []string{"RELAY_TOKEN=", "RELAY_CA_FILE=" + ca}, "stopped", []string{"RELAY_TOKEN"}},
		{"no CA", "CC-1b", []string{"RELAY_TOKEN=" + tok1}, "reconnecting", []string{"--ca-file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := spawnAgent(t, url, tc.id, t.TempDir(), tc.env...)
			x.waitState(t, tc.state)
			txt, _ := x.call(t, "relay_status", nil)
			t.Logf("%s: %q", tc.name, txt)
			for _, w := range tc.says {
				if !strings.Contains(txt, w) {
					t.Errorf("status %q does not say %q", txt, w)
				}
			}
		})
	}
	if strings.Contains(r.Logs(), tok1) || strings.Contains(r.Logs(), tok2) {
		t.Fatal("a token appears in relayd's log")
	}
	// The impostor never got in: CC-1 sees only CC-2 besides itself.
	if txt, _ := a.call(t, "relay_peers", nil); strings.Contains(txt, "CC-3") || !strings.Contains(txt, "CC-2") {
		t.Fatalf("peers: %s", txt)
	}
}

// newToken runs `relayd token new --ids id` and returns the token and its
// tokens-file line.
func newToken(t *testing.T, id string) (tok, line string) {
	t.Helper()
	out, err := exec.Command(bins.relayd, "token", "new", "--ids", id).Output()
	if err != nil {
		t.Fatalf("relayd token new: %v", err)
	}
	var plain []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "#") {
			plain = append(plain, l)
		}
	}
	if len(plain) != 2 {
		t.Fatalf("relayd token new printed %q", out)
	}
	return plain[0], plain[1]
}
