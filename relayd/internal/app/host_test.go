package app

import (
	"net/http"
	"strings"
	"testing"
)

// --allow-host reaches the server: a relay without a token answers
// 127.0.0.1 and the listed name, and refuses any other name with 403 (a
// page that rebinds its DNS name to this machine).
func TestAllowHostFlag(t *testing.T) {
	t.Setenv("RELAY_TOKEN", "")
	addr, _, stop := serveInProcess(t, "--store", "memory", "--allow-host", "relay.lan")
	defer stop()
	_, port, _ := strings.Cut(addr, ":")
	get := func(host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
		req.Host = host + ":" + port
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		return resp.StatusCode, string(b[:n])
	}
	for host, want := range map[string]int{"127.0.0.1": 200, "localhost": 200, "relay.lan": 200, "evil.example": 403} {
		if code, body := get(host); code != want {
			t.Errorf("Host %s: %d %q, want %d", host, code, body, want)
		}
	}
	if code, body := get("evil.example"); !strings.Contains(body, "--allow-host evil.example") {
		t.Errorf("403 does not name the fix: %d %q", code, body)
	}
}
