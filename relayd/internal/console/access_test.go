//go:build unix

package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/relayd/internal/console"
)

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// TestAccessWithToken: with a token, nothing but the login form (and its
// stylesheet) is served until the token is given; the session cookie is
// HttpOnly, SameSite=Strict and bound to the token; posts need the page's
// own Origin and its CSRF token; every answer carries the security headers.
func TestAccessWithToken(t *testing.T) {
	const token = "s3cret-relay-token-0123456789"
	r := startRelay(t, relayOpts{token: token})
	cl := &http.Client{CheckRedirect: noRedirect}

	get := func(path string, cookie *http.Cookie) (*http.Response, string) {
		req, _ := http.NewRequest("GET", r.url+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readAll(t, resp)
	}

	// Not logged in: the login form, and 401 for everything else.
	resp, page := get("/console", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `name="token"`) || strings.Contains(page, "app.js") {
		t.Errorf("GET /console without a session: %d, want the login form only:\n%s", resp.StatusCode, page)
	}
	checkHeaders(t, resp)
	for _, p := range []string{"/console/static/app.js", "/console/api/state", "/console/api/messages", "/console/api/events", "/console/api/stages?ids=x",
		"/console/api/search?q=secret"} {
		if resp, body := get(p, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %d %s, want 401", p, resp.StatusCode, body)
		}
	}
	if resp, _ := get("/console/static/app.css", nil); resp.StatusCode != 200 {
		t.Errorf("the login form's stylesheet: %d", resp.StatusCode)
	}

	login := func(tok, origin string) *http.Response {
		req, _ := http.NewRequest("POST", r.url+"/console/login", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := login("wrong", r.url); len(resp.Cookies()) != 0 || !strings.Contains(resp.Header.Get("Location"), "failed") {
		t.Errorf("a wrong token got cookies %v, location %q", resp.Cookies(), resp.Header.Get("Location"))
	}
	if resp := login(token, "http://evil.example"); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("a login posted from another origin: %d with cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp = login(token, r.url)
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "relay_console" {
			ck = c
		}
	}
	if ck == nil {
		t.Fatalf("no session cookie after a right token: %d %v", resp.StatusCode, resp.Header)
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console" || strings.Contains(ck.Value, token) {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/console, not the token itself", ck)
	}

	// Logged in: the console and its API.
	resp, page = get("/console", ck)
	if !strings.Contains(page, "app.js") {
		t.Errorf("GET /console with a session is not the console:\n%s", page)
	}
	resp, body := get("/console/api/state", ck)
	var st struct {
		CSRF string `json:"csrf"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.CSRF == "" {
		t.Fatalf("state: %d %s", resp.StatusCode, body)
	}
	// A cookie for another token is worth nothing.
	forged := *ck
	forged.Value = strings.ToUpper(ck.Value[:4]) + ck.Value[4:]
	if resp, _ := get("/console/api/state", &forged); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a forged cookie got %d", resp.StatusCode)
	}

	r.agent("CC-1", "")
	post := func(origin, csrf string) int {
		req, _ := http.NewRequest("POST", r.url+"/console/api/post", strings.NewReader(`{"as":"ana","to":["CC-1"],"body":"hi"}`))
		req.AddCookie(ck)
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if csrf != "" {
			req.Header.Set("X-Console-CSRF", csrf)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		return resp.StatusCode
	}
	if code := post(r.url, ""); code != http.StatusForbidden {
		t.Errorf("post without the CSRF token: %d, want 403", code)
	}
	if code := post("http://evil.example", st.CSRF); code != http.StatusForbidden {
		t.Errorf("post from another origin: %d, want 403", code)
	}
	if code := post("", st.CSRF); code != http.StatusForbidden {
		t.Errorf("post without Origin: %d, want 403", code)
	}
	if code := post(r.url, st.CSRF); code != 200 {
		t.Errorf("post from the console with its CSRF token: %d, want 200", code)
	}
}

func checkHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	var script string
	for _, d := range strings.Split(csp, ";") {
		if d = strings.TrimSpace(d); strings.HasPrefix(d, "script-src ") {
			script = d
		}
	}
	if script != "script-src 'self'" || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q: want script-src 'self' (no unsafe-inline) and frame-ancestors 'none'", csp)
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
}

// TestAccessWithoutToken: loopback only; a request a browser marks
// cross-site gets nothing.
func TestAccessWithoutToken(t *testing.T) {
	r := startRelay(t, relayOpts{})
	c := &console.Console{Hub: r.hub}
	h := c.Handler()
	defer c.Close()
	for _, tc := range []struct {
		remote, site string
		want         int
	}{
		{"127.0.0.1:5000", "", 200},
		{"[::1]:5000", "same-origin", 200},
		{"192.0.2.7:5000", "", http.StatusForbidden},
		{"127.0.0.1:5000", "cross-site", http.StatusForbidden},
	} {
		for _, path := range []string{"/console", "/console/api/state"} {
			req := httptest.NewRequest("GET", path, nil)
			req.RemoteAddr = tc.remote
			if tc.site != "" {
				req.Header.Set("Sec-Fetch-Site", tc.site)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			want := tc.want
			if tc.site == "cross-site" && path == "/console" {
				want = 200 // a link from another site: the page, which holds no data
			}
			if w.Code != want {
				t.Errorf("GET %s from %s (Sec-Fetch-Site %q): %d, want %d", path, tc.remote, tc.site, w.Code, want)
			}
			if tc.want == 200 && path == "/console" {
				checkHeaders(t, w.Result())
			}
		}
	}
}
