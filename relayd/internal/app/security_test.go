package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/auth"
)

func TestSecurityFlagErrors(t *testing.T) {
	t.Setenv("RELAY_TOKEN", "")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad-tokens")
	os.WriteFile(bad, []byte("plain-token CC-1\n"), 0o600)
	empty := filepath.Join(dir, "empty-tokens")
	os.WriteFile(empty, []byte("# nothing yet\n"), 0o600)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		// The issue's own example: the fix is in the message.
		{"0.0.0.0:9999 without a token", []string{"--listen", "0.0.0.0:9999", "--store", "memory"},
			[]string{"refusing to listen on 0.0.0.0:9999 without a token", "RELAY_TOKEN", "--token-file", "--tokens-file", "SSH tunnel", "--insecure"}},
		{"tokens file missing", []string{"--tokens-file", filepath.Join(dir, "nope")}, []string{"reading --tokens-file"}},
		{"tokens file with a plain token", []string{"--tokens-file", bad}, []string{"line 1", "not the token itself", "relayd token hash"}},
		{"tokens file without tokens", []string{"--tokens-file", empty}, []string{"has no tokens", "relayd token new"}},
		{"cert without key", []string{"--tls-cert", "/x.pem"}, []string{"--tls-cert and --tls-key go together"}},
		{"unreadable cert", []string{"--tls-cert", "/nope.pem", "--tls-key", "/nope.key"}, []string{"loading --tls-cert", "PEM"}},
		{"bad pair limit", []string{"--pair-limit", "lots"}, []string{"--pair-limit", "N/DURATION"}},
		{"allow-host with a port", []string{"--allow-host", "relay.lan:9999"}, []string{"--allow-host", "without scheme or port"}},
		{"bad auth-fail limit", []string{"--auth-fail-limit", "many"}, []string{"--auth-fail-limit", "N/DURATION"}},
		{"negative max conns", []string{"--max-conns", "-1"}, []string{"--max-conns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2 (stderr: %s)", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not mention %q", stderr, w)
				}
			}
		})
	}
}

// --insecure warns on every start. 192.0.2.1 (TEST-NET-1) is not on this
// machine, so the listen fails right after the warning: nothing is ever
// exposed beyond loopback by the test.
func TestInsecureWarnsEveryStart(t *testing.T) {
	t.Setenv("RELAY_TOKEN", "")
	for range 2 {
		code, _, stderr := run(t, "--listen", "192.0.2.1:0", "--store", "memory", "--insecure")
		if code != 1 || !strings.Contains(stderr, "WITHOUT a token (--insecure)") || !strings.Contains(stderr, "cannot listen on 192.0.2.1:0") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	}
	t.Setenv("RELAY_TOKEN", "some-token")
	code, _, stderr := run(t, "--listen", "192.0.2.1:0", "--store", "memory")
	if code != 1 || !strings.Contains(stderr, "without TLS") || strings.Contains(stderr, "some-token") {
		t.Fatalf("token without TLS beyond loopback: exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stderr, "the shared token is only 10 characters") || !strings.Contains(stderr, "relayd token new") {
		t.Fatalf("a short token beyond loopback is not warned about: %q", stderr)
	}
	t.Setenv("RELAY_TOKEN", strings.Repeat("k", 43))
	if _, _, stderr := run(t, "--listen", "192.0.2.1:0", "--store", "memory"); strings.Contains(stderr, "characters: someone") {
		t.Fatalf("a long token warned about: %q", stderr)
	}
}

func TestTokenCommand(t *testing.T) {
	code, out, stderr := run(t, "token", "new", "--ids", "CC-*,BOT-?")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	tok, line := tokenAndLine(t, out)
	if len(tok) != 43 {
		t.Fatalf("token %q is not 32 bytes of base64url", tok)
	}
	toks, err := auth.ParseTokens(strings.NewReader(out)) // the whole output is a valid tokens file? no: the token line is not
	if err == nil {
		t.Fatalf("the token itself parsed as a tokens-file line: %+v", toks)
	}
	toks, err = auth.ParseTokens(strings.NewReader(line))
	if err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	id, ok := auth.NewAuthenticator("", toks).Check(tok)
	if !ok || !id.May("CC-7") || !id.May("BOT-1") || id.May("CODEX") {
		t.Fatalf("the printed line does not give the printed token exactly its ids: %+v %v", id, ok)
	}
	if code, _, stderr := run(t, "token", "new", "--ids", "CC/1"); code != 2 || !strings.Contains(stderr, "--ids") {
		t.Fatalf("bad glob: exit %d %q", code, stderr)
	}
	if code, _, stderr := run(t, "token", "new"); code == 0 || !strings.Contains(stderr, "ids") {
		t.Fatalf("no --ids: exit %d %q", code, stderr)
	}
}

// tokenAndLine reads `relayd token new` output: comment, token, comment, line.
func tokenAndLine(t *testing.T, out string) (tok, line string) {
	t.Helper()
	var plain []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "#") {
			plain = append(plain, l)
		}
	}
	if len(plain) != 2 || !strings.HasPrefix(plain[1], "sha256:") {
		t.Fatalf("token new printed %q", out)
	}
	return plain[0], plain[1]
}

// The safe recipe for a network: TLS and per-identity tokens, end to end
// through relayd's command line.
func TestTLSWithPerIdentityTokens(t *testing.T) {
	t.Setenv("RELAY_TOKEN", "")
	caFile, certFile, keyFile := testkit.WriteTestCA(t, t.TempDir())
	_, out, _ := run(t, "token", "new", "--ids", "CC-1")
	tok, line := tokenAndLine(t, out)
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("# CC-1's laptop\n"+line+"\n"), 0o600)

	addr, stderr, stopRelay := serveInProcess(t, "--store", "memory", "--tls-cert", certFile, "--tls-key", keyFile, "--tokens-file", tokens, "--log-level", "debug")
	stopped, code := false, 0
	stop := func() int {
		if !stopped {
			stopped, code = true, stopRelay()
		}
		return code
	}
	defer stop()
	caPEM, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()

	resp, err := hc.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("https healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	if _, err := http.Get("https://" + addr + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v, want a certificate error", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dial := func(id string) (*websocket.Conn, protocol.Frame) {
		t.Helper()
		ws, _, err := websocket.Dial(ctx, "wss://"+addr+"/v1/ws", &websocket.DialOptions{HTTPClient: hc,
			HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
		if err != nil {
			t.Fatalf("wss dial: %v", err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		b, _ := protocol.Encode(&protocol.Hello{Proto: 1, ClientID: id})
		ws.Write(ctx, websocket.MessageText, b)
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f, err := protocol.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		return ws, f
	}
	if _, f := dial("CC-1"); f.Type() != protocol.TypeWelcome {
		t.Fatalf("CC-1 over wss: %+v", f)
	}
	ws, f := dial("CC-2")
	if e, ok := f.(*protocol.ErrorFrame); !ok || e.Code != protocol.CodeForbidden {
		t.Fatalf("CC-2 with CC-1's token: %+v", f)
	}
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != protocol.CloseForbiddenID {
		t.Fatalf("close: %v, want %d", err, protocol.CloseForbiddenID)
	}
	// Plain ws:// to the TLS port gets no WebSocket.
	if _, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws", nil); err == nil {
		t.Fatal("plain ws:// reached a TLS listener")
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	logs := stderr.String()
	if strings.Contains(logs, tok) {
		t.Fatal("the token appears in the logs")
	}
	audited := false
	for _, l := range strings.Split(logs, "\n") {
		audited = audited || strings.Contains(l, `msg="client authenticated"`) && strings.Contains(l, "client=CC-1") && strings.Contains(l, `credential="tokens-file line 2"`)
	}
	if !audited {
		t.Errorf("no log line says CC-1 came in with tokens-file line 2:\n%s", logs)
	}
	for _, w := range []string{`scheme=wss`, `client id refused`, `credential="tokens-file line 2"`} {
		if !strings.Contains(logs, w) {
			t.Errorf("logs do not mention %s:\n%s", w, logs)
		}
	}
}
