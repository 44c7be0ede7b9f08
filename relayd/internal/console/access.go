package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/auth"
)

// Access to the console.
//
//   - With a token configured (RELAY_TOKEN, --token-file), the console asks
//     for one that may claim any id in a login form. The answer is a cookie
//     whose value is an HMAC of the token (keyed by its SHA-256), so it is
//     bound to the token: change the token and every session ends. The
//     cookie is HttpOnly, SameSite=Strict, Path=/console, Secure over TLS.
//   - Without a token, the console is served to loopback addresses only
//     (the relay's Host check already refuses DNS-rebinding names).
//   - Posts (login aside) must come from the console's own origin (Origin
//     header) and carry the CSRF token the page got from /api/state, which
//     a page of another origin cannot read.
//   - Nothing is served to another origin: no CORS headers, and API
//     requests a browser marks cross-site are refused.

const cookieName = "relay_console"

// cookieLabel is what the cookie's HMAC signs.
const cookieLabel = "claude-relay console session v1"

func (c *Console) authEnabled() bool { return auth.NewAuthenticator(c.Token, c.Tokens).Enabled() }

// sessionValue is the cookie value for a token with this SHA-256 digest.
func sessionValue(digest [sha256.Size]byte) string {
	m := hmac.New(sha256.New, digest[:])
	m.Write([]byte(cookieLabel))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// operatorDigests are the digests of the tokens that may use the console:
// the shared token, and tokens-file lines that may claim any id.
func (c *Console) operatorDigests() [][sha256.Size]byte {
	var out [][sha256.Size]byte
	if c.Token != "" {
		out = append(out, sha256.Sum256([]byte(c.Token)))
	}
	if c.Tokens != nil {
		for _, e := range c.Tokens.Entries {
			for _, g := range e.Globs {
				if g == "*" {
					out = append(out, e.Digest)
					break
				}
			}
		}
	}
	return out
}

// session returns the request's valid session cookie value, or "".
func (c *Console) session(r *http.Request) string {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return ""
	}
	ok := 0
	for _, d := range c.operatorDigests() {
		ok |= subtle.ConstantTimeCompare([]byte(sessionValue(d)), []byte(ck.Value))
	}
	if ok == 1 {
		return ck.Value
	}
	return ""
}

func isLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// refusedLoopback answers a request from beyond loopback to a console
// without a token, and reports whether it did.
func (c *Console) refusedLoopback(r *http.Request) bool { return !c.authEnabled() && !isLoopback(r) }

// allowed reports whether r may see the console; if not, it has answered
// (when answer is set: 401 for the API, 403 beyond loopback).
func (c *Console) allowed(w http.ResponseWriter, r *http.Request, answer bool) bool {
	// The page itself may be reached by a link from anywhere (it holds no
	// data); what it loads must come from its own origin.
	if site := r.Header.Get("Sec-Fetch-Site"); answer && (site == "cross-site" || site == "same-site") {
		http.Error(w, "403 forbidden: the console answers only its own pages", http.StatusForbidden)
		return false
	}
	if !c.authEnabled() {
		if isLoopback(r) {
			return true
		}
		http.Error(w, "403 forbidden: this relay has no token, so its console is served to loopback only; "+
			"give relayd a token (RELAY_TOKEN or --token-file) to open the console to other machines", http.StatusForbidden)
		return false
	}
	if c.session(r) != "" {
		return true
	}
	if answer {
		http.Error(w, "401 unauthorized: log in to the console at "+Path, http.StatusUnauthorized)
	}
	return false
}

// sameOrigin reports whether r's Origin is the console's own (its Host).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return false
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// csrfToken is the token a page must send back with its posts: an HMAC of
// its session (per process for loopback without a token).
func (c *Console) csrfToken(r *http.Request) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte("csrf\x00" + c.session(r)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) csrfOK(w http.ResponseWriter, r *http.Request) bool {
	if !sameOrigin(r) {
		http.Error(w, "403 forbidden: posts to the console must come from its own page (Origin)", http.StatusForbidden)
		return false
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Console-CSRF")), []byte(c.csrfToken(r))) != 1 {
		http.Error(w, "403 forbidden: missing or wrong CSRF token; reload the console", http.StatusForbidden)
		return false
	}
	return true
}

func (c *Console) serveLogin(w http.ResponseWriter, r *http.Request) {
	if !c.authEnabled() {
		http.Redirect(w, r, Path, http.StatusSeeOther)
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(r) {
		http.Error(w, "403 forbidden: log in from the console's own page", http.StatusForbidden)
		return
	}
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	now := time.Now()
	if c.AuthFails != nil {
		if wait := c.AuthFails.Wait(addr, now); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			http.Error(w, fmt.Sprintf("429 too many wrong tokens from %s; wait %s", addr, wait.Round(time.Second)), http.StatusTooManyRequests)
			return
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8192)
	token := strings.TrimSpace(r.PostFormValue("token"))
	sum := sha256.Sum256([]byte(token))
	match := 0
	for _, d := range c.operatorDigests() {
		match |= subtle.ConstantTimeCompare(sum[:], d[:])
	}
	if token == "" || match != 1 {
		if token != "" && c.AuthFails != nil {
			c.AuthFails.Allow(addr, now)
		}
		c.Logger.Info("console login refused", "remote", r.RemoteAddr)
		http.Redirect(w, r, Path+"?login=failed", http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: sessionValue(sum), Path: Path, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	c.Logger.Info("console login", "remote", r.RemoteAddr)
	http.Redirect(w, r, Path, http.StatusSeeOther)
}

func (c *Console) serveLogout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "403 forbidden: log out from the console's own page", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Path, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Path, http.StatusSeeOther)
}
