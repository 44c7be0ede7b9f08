// Package doctor checks, in order, everything a relay-mcp session needs and
// prints what is wrong with the fix: this binary and the relay's protocol,
// the relay reachable (TCP, then the WebSocket upgrade, then hello), the
// token, an SSH tunnel, the session registry, the inbox directory, the
// clock against the relay's, and which agents start relay-mcp (and whether
// its Claude Code hooks are installed). It says hello with no_takeover, so it never
// knocks a running session offline, and it changes no file.
package doctor

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/claude-relay/claude-relay/internal/agentsetup"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/proc"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/registry"
	"github.com/coder/websocket"
)

// Config is what doctor checks.
type Config struct {
	URL string // relay URL as link.ParseURL returns it
	// URLs, when set, are the relays of a cluster relay-mcp fails over
	// between: each gets the relay checks in turn. URL is then ignored.
	URLs        []string
	Token       string
	TokenSource string      // where the token came from, for messages ("RELAY_TOKEN")
	TLS         *tls.Config // nil: the system's roots
	Home        string      // $RELAY_HOME
	ID          string      // the id to say hello as
	Host        string      // this machine's name
	Version     string      // this binary's version line
	// Timeout bounds each network step. Defaults to 5 s.
	Timeout time.Duration
	// Notes are checks made by the caller, printed after the clock's.
	Notes []Note
	// MaxSkew is the clock difference to the relay that fails the check.
	// Defaults to 5 s: message times and "last seen" read wrong beyond it.
	MaxSkew time.Duration
}

// Note is one check's line: its status, what was found, and the fix.
type Note struct {
	Status    Status
	What, Fix string
}

// Status of one check.
type Status string

const (
	OK   Status = "OK"
	Fail Status = "FAIL"
	Warn Status = "WARN" // worth knowing; does not fail doctor
	Skip Status = "SKIP" // could not be checked because an earlier step failed
)

type report struct {
	w     io.Writer
	fails int
}

func (r *report) add(st Status, what, fix string) {
	fmt.Fprintf(r.w, "%-4s  %s\n", st, what)
	if fix != "" {
		fmt.Fprintf(r.w, "      fix: %s\n", fix)
	}
	if st == Fail {
		r.fails++
	}
}

// Run runs every check, writing one line each (and a fix under each
// failure) to w, and returns the number of failures.
func Run(ctx context.Context, cfg Config, w io.Writer) int {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = 5 * time.Second
	}
	r := &report{w: w}
	urls := cfg.URLs
	if len(urls) == 0 {
		urls = []string{cfg.URL}
	}
	fmt.Fprintf(w, "relay-mcp doctor: %s as %s, home %s\n", strings.Join(urls, ","), cfg.ID, cfg.Home)
	r.add(OK, "this binary: "+cfg.Version, "")
	// Every relay of a list is checked: a node that is down is a problem
	// even while the session fails over to another.
	var n netInfo
	for i, u := range urls {
		if len(urls) > 1 {
			fmt.Fprintf(w, "relay %d of %d: %s\n", i+1, len(urls), u)
		}
		one := cfg
		one.URL = u
		if got := relayChecks(ctx, one, r); n.health == nil {
			n = got // the clock is checked against the first relay that answered
		}
	}
	registryCheck(cfg, r)
	inboxCheck(cfg, r)
	clockCheck(cfg, n, r)
	for _, x := range cfg.Notes {
		r.add(x.Status, x.What, x.Fix)
	}
	home, _ := os.UserHomeDir()
	cwd, _ := os.Getwd()
	for _, l := range agentsetup.Check(agentsetup.Env{Home: home, Cwd: cwd}) {
		r.add(Status(l.Status), l.What, l.Fix)
	}
	if r.fails == 0 {
		fmt.Fprintln(w, "all checks passed")
	} else {
		fmt.Fprintf(w, "%d check(s) failed\n", r.fails)
	}
	return r.fails
}

// netInfo is what the relay checks learned for later ones.
type netInfo struct {
	health     *health
	date       time.Time // the relay's HTTP Date of /healthz
	sent, recv time.Time // when that request left and its answer came
}

type health struct {
	Version string `json:"version"`
	Proto   int    `json:"proto"`
	Online  int    `json:"peers_online"`
}

func relayChecks(ctx context.Context, cfg Config, r *report) netInfo {
	var n netInfo
	u, err := url.Parse(cfg.URL)
	if err != nil {
		r.add(Fail, "relay URL "+cfg.URL, "set RELAY_URL to ws://HOST:PORT or wss://HOST:PORT")
		return n
	}
	hostport := u.Host
	if u.Port() == "" {
		hostport = net.JoinHostPort(u.Hostname(), map[string]string{"ws": "80", "wss": "443"}[u.Scheme])
	}
	_, port, _ := net.SplitHostPort(hostport)
	loopback := isLoopback(u.Hostname())
	ps := processes()

	// 1. Versions are printed first; the relay's half comes with welcome.
	// 2. TCP.
	d := net.Dialer{Timeout: cfg.Timeout}
	t0 := time.Now()
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		r.add(Fail, fmt.Sprintf("TCP connect %s: %s", hostport, shortNetErr(err)), tcpFix(err, hostport, port, loopback, ps))
		skipRest(r, "relay not reachable")
		tunnelCheck(cfg, loopback, port, ps, false, r)
		return n
	}
	conn.Close()
	r.add(OK, fmt.Sprintf("TCP connect %s (%s)", hostport, time.Since(t0).Round(10*time.Microsecond)), "")

	// /healthz: the relay's version and its clock (HTTP Date).
	n = fetchHealth(ctx, cfg, u)

	// 3. WebSocket upgrade.
	opts := &websocket.DialOptions{}
	if cfg.TLS != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg.TLS
		opts.HTTPClient = &http.Client{Transport: tr}
	}
	if cfg.Token != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + cfg.Token}}
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	ws, resp, err := websocket.Dial(dctx, cfg.URL, opts)
	cancel()
	if err != nil {
		switch {
		case resp != nil && resp.StatusCode == http.StatusUnauthorized:
			r.add(OK, "WebSocket upgrade at "+u.Path+": the relay answered", "")
			r.add(Skip, "hello", "")
			r.add(Fail, "token: "+tokenRefused(cfg), tokenFix(cfg))
		case resp != nil && resp.StatusCode == http.StatusForbidden:
			r.add(Fail, fmt.Sprintf("WebSocket upgrade at %s: HTTP 403 forbidden", u.Path),
				"the relay refuses this request's Origin or this client: relay-mcp sends no Origin, so something between (a proxy) adds one — connect directly or through an SSH tunnel, or allow it on the relay (relayd --allow-origin)")
			skipRest(r, "upgrade refused")
		default:
			fix := link.DialHint(cfg.URL, resp, err)
			if fix == "" && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
				fix = "the relay does not speak TLS: use ws:// instead of wss://, or start relayd with --tls-cert/--tls-key"
			}
			if fix == "" && resp != nil && resp.StatusCode == http.StatusNotFound {
				fix = "nothing serves " + u.Path + " there: is this a relayd? use ws://HOST:PORT (relay-mcp adds /v1/ws)"
			}
			if fix == "" {
				fix = "is this port a relayd? `curl -s http://" + hostport + "/healthz` should answer {\"status\":\"ok\"…}"
			}
			r.add(Fail, fmt.Sprintf("WebSocket upgrade at %s: %s", cfg.URL, shortNetErr(err)), fix)
			skipRest(r, "no WebSocket")
		}
		tunnelCheck(cfg, loopback, port, ps, true, r)
		return n
	}
	defer ws.CloseNow()
	ws.SetReadLimit(32 << 20)
	r.add(OK, "WebSocket upgrade at "+u.Path, "")

	// 4. hello, without taking the id over from a running session.
	hello := &protocol.Hello{Proto: protocol.Version, ClientID: cfg.ID, Host: cfg.Host, PID: os.Getpid(), Agent: "doctor", Quiet: true, NoTakeover: true}
	hctx, hcancel := context.WithTimeout(ctx, cfg.Timeout)
	defer hcancel()
	welcome, ef, code, err := sayHello(hctx, ws, hello)
	switch {
	case welcome != nil:
		r.add(OK, fmt.Sprintf("hello as %s: welcome from %q, protocol v%d", cfg.ID, welcome.Server, welcome.Proto), "")
		versionCheck(cfg, welcome.Server, welcome.Proto, r)
		tokenOK(cfg, r)
		ws.Close(websocket.StatusNormalClosure, "doctor done")
	case code == protocol.CloseIDInUse:
		r.add(OK, fmt.Sprintf("hello as %s: the relay answered; the id is online on another connection (a running session) and doctor did not take it over", cfg.ID), "")
		if n.health != nil {
			versionCheck(cfg, "relayd "+n.health.Version, n.health.Proto, r)
		}
		tokenOK(cfg, r)
	case code == protocol.CloseForbiddenID || code == protocol.CloseUnauthorized:
		r.add(OK, "hello: the relay answered", "")
		r.add(Fail, fmt.Sprintf("token: the relay refused it for %s (%s)", cfg.ID, errText(ef, code)),
			fmt.Sprintf("this token may not claim the id %s: use an id its --tokens-file line lists (CLAUDE_RELAY_SESSION_ID), or make one that may: relayd token new --ids '%s'", cfg.ID, cfg.ID))
	case code == protocol.CloseBadHello:
		r.add(Fail, "hello: the relay refused it ("+errText(ef, code)+")", "the relay speaks another protocol version: upgrade the older of relayd and relay-mcp")
		if n.health != nil {
			versionCheck(cfg, "relayd "+n.health.Version, n.health.Proto, r)
		}
	default:
		msg := errText(ef, code)
		if err != nil {
			msg = err.Error()
		}
		r.add(Fail, "hello as "+cfg.ID+": "+msg, "the relay accepted the WebSocket but not the session: see relayd's log (relayd --log-level debug)")
	}
	tunnelCheck(cfg, loopback, port, ps, true, r)
	return n
}

func errText(ef *protocol.ErrorFrame, code int) string {
	s := fmt.Sprintf("close %d %s", code, protocol.CloseReason(code))
	if ef != nil {
		s = fmt.Sprintf("%s: %s; %s", ef.Code, ef.Message, s)
	}
	return s
}

// sayHello sends hello and reads the answer: welcome, or an error frame and
// the close code that follows it.
func sayHello(ctx context.Context, ws *websocket.Conn, h *protocol.Hello) (*protocol.Welcome, *protocol.ErrorFrame, int, error) {
	data, err := protocol.Encode(h)
	if err != nil {
		return nil, nil, 0, err
	}
	if err := ws.Write(ctx, websocket.MessageText, data); err != nil {
		return nil, nil, int(websocket.CloseStatus(err)), err
	}
	var ef *protocol.ErrorFrame
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return nil, ef, int(websocket.CloseStatus(err)), err
		}
		f, err := protocol.Decode(data)
		if err != nil {
			return nil, ef, 0, fmt.Errorf("bad frame from the relay: %w", err)
		}
		switch f := f.(type) {
		case *protocol.Welcome:
			return f, nil, 0, nil
		case *protocol.ErrorFrame:
			ef = f // the close follows
		}
	}
}

func versionCheck(cfg Config, server string, proto int, r *report) {
	mine := strings.Join(strings.Fields(cfg.Version)[:min(2, len(strings.Fields(cfg.Version)))], " ")
	what := fmt.Sprintf("versions: %s speaks protocol v%d; relay %q speaks v%d", mine, protocol.Version, server, proto)
	if proto != protocol.Version {
		r.add(Fail, what, fmt.Sprintf("this relay-mcp speaks protocol v%d: upgrade the older side (go install github.com/claude-relay/claude-relay/relay-mcp@latest, and the same for relayd)", protocol.Version))
		return
	}
	r.add(OK, what+": compatible", "")
}

func tokenOK(cfg Config, r *report) {
	if cfg.Token == "" {
		r.add(OK, "token: none set, and the relay asks for none", "")
		return
	}
	r.add(OK, "token accepted (from "+cfg.TokenSource+")", "")
}

func tokenRefused(cfg Config) string {
	if cfg.Token == "" {
		return "the relay requires one and none is set (HTTP 401)"
	}
	return "the relay refused the token from " + cfg.TokenSource + " (HTTP 401)"
}

func tokenFix(cfg Config) string {
	if cfg.Token == "" {
		return "set RELAY_TOKEN, or --token-file / RELAY_TOKEN_FILE, to the relay's token (the one relayd was started with: RELAY_TOKEN or --token-file on the relay)"
	}
	return "the token differs from the relay's: copy the relay's token again into " + cfg.TokenSource + " (no trailing spaces), or ask for one with relayd token new --ids '" + cfg.ID + "'"
}

func skipRest(r *report, why string) {
	r.add(Skip, "hello, versions and token: "+why, "")
}

func tcpFix(err error, hostport, port string, loopback bool, ps []process) string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return "cannot resolve the relay's host name: check RELAY_URL (for an SSH tunnel use ws://127.0.0.1:" + port + ")"
	case errors.Is(err, syscall.ECONNREFUSED) && loopback:
		if t, ok := findTunnel(ps, port); ok {
			return fmt.Sprintf("an SSH tunnel (pid %d) holds port %s but is not forwarding: see the SSH tunnel line below", t.pid, port)
		}
		return "nothing listens on " + hostport + ": start relayd (`relayd`, `make run`, or `relayd service install`); if the relay runs on another machine, open the tunnel: ssh -N -L " + port + ":127.0.0.1:" + port + " you@relay-host"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens on " + hostport + ": is relayd running there, listening beyond loopback (relayd --listen 0.0.0.0:" + port + " with a token)? or reach it through an SSH tunnel and use ws://127.0.0.1:" + port
	default:
		return "no answer from " + hostport + " within the timeout: a firewall, a wrong address, or a host that is down — check RELAY_URL"
	}
}

func shortNetErr(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var se *os.SyscallError
		if errors.As(op.Err, &se) {
			return se.Err.Error()
		}
		return op.Err.Error()
	}
	return err.Error()
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tunnelCheck: a loopback URL with no relayd on this machine means the relay
// is reached through an SSH tunnel (or a container's port). Best effort: it
// reads the process list.
func tunnelCheck(cfg Config, loopback bool, port string, ps []process, reached bool, r *report) {
	if !loopback {
		r.add(Skip, "SSH tunnel: the relay URL is not loopback", "")
		return
	}
	if len(ps) == 0 {
		r.add(Skip, "SSH tunnel: cannot list this machine's processes", "")
		return
	}
	if reached {
		if l, ok := listener(ps, port); ok {
			name := filepath.Base(l.args[0])
			switch name {
			case "relayd":
				r.add(OK, fmt.Sprintf("SSH tunnel: not needed, relayd runs on this machine (pid %d) and listens on port %s", l.pid, port), "")
			case "ssh":
				r.add(OK, fmt.Sprintf("SSH tunnel: pid %d (%s) carries port %s to the relay", l.pid, strings.Join(l.args, " "), port), "")
			default:
				r.add(OK, fmt.Sprintf("SSH tunnel: not needed, %s (pid %d) listens on port %s", name, l.pid, port), "")
			}
			return
		}
	}
	if t, ok := findTunnel(ps, port); ok && !reached {
		r.add(Fail, fmt.Sprintf("SSH tunnel: pid %d (%s) should forward port %s, but the relay did not answer through it", t.pid, strings.Join(t.args, " "), port),
			fmt.Sprintf("the tunnel is still connecting, has lost its connection, or the relay on %s is down: check the relay there (ssh %s curl -s http://%s/healthz), then restart the tunnel (kill %d and run it again; or launchctl kickstart -k gui/$UID/<label>, systemctl --user restart relay-tunnel@<host>)", t.dest, t.dest, t.remote, t.pid))
		return
	}
	if p, ok := findRelayd(ps); ok {
		if !reached {
			r.add(Warn, fmt.Sprintf("relayd runs on this machine (pid %d: %s) but did not answer on port %s", p.pid, strings.Join(p.args, " "), port),
				"it listens elsewhere (--listen, RELAY_PORT) or is stuck: make RELAY_URL and its --listen agree, or restart it")
			return
		}
		r.add(OK, fmt.Sprintf("SSH tunnel: not needed, relayd runs on this machine (pid %d)", p.pid), "")
		return
	}
	t, ok := findTunnel(ps, port)
	switch {
	case ok && reached:
		r.add(OK, fmt.Sprintf("SSH tunnel: pid %d (%s) carries port %s to the relay", t.pid, strings.Join(t.args, " "), port), "")
	case reached:
		r.add(OK, "SSH tunnel: none seen, and none needed — something on this machine answers on port "+port+" (a relayd under another name, a container, or a tunnel this check cannot see)", "")
	default:
		r.add(Skip, "SSH tunnel: no relayd and no ssh -L "+port+":… on this machine (see the fix above)", "")
	}
}

func fetchHealth(ctx context.Context, cfg Config, u *url.URL) netInfo {
	var n netInfo
	hu := *u
	hu.Scheme = map[string]string{"ws": "http", "wss": "https"}[u.Scheme]
	hu.Path, hu.RawPath, hu.RawQuery = "/healthz", "", ""
	client := &http.Client{Timeout: cfg.Timeout}
	if cfg.TLS != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg.TLS
		client.Transport = tr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hu.String(), nil)
	if err != nil {
		return n
	}
	n.sent = time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return n
	}
	defer resp.Body.Close()
	n.recv = time.Now()
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		n.date = d
	}
	var h health
	if resp.StatusCode == http.StatusOK && json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h) == nil {
		n.health = &h
	}
	return n
}

func registryCheck(cfg Config, r *report) {
	reg := registry.Open(cfg.Home, nil)
	path := reg.Path()
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		r.add(OK, "registry "+path+": none yet (written when a session starts)", "")
		return
	case err != nil:
		r.add(Fail, "registry "+path+": "+err.Error(), "RELAY_HOME ("+cfg.Home+") must be a directory this user can read and write: fix its owner and mode, or point RELAY_HOME elsewhere")
		return
	}
	f, err := registry.Decode(data)
	if err != nil {
		r.add(Fail, "registry "+path+" is corrupt: "+err.Error(),
			"relay-mcp moves it aside on its next start and sessions register again; to do it now: mv "+path+" "+path+".broken")
		return
	}
	var stale []string
	for id, s := range f.Sessions {
		if s.Online && s.PID > 0 && (s.Host == "" || s.Host == cfg.Host) && !proc.Alive(s.PID) {
			stale = append(stale, fmt.Sprintf("%s (pid %d)", id, s.PID))
		}
	}
	r.add(OK, fmt.Sprintf("registry %s: %d session(s)", path, len(f.Sessions)), "")
	if len(stale) > 0 {
		r.add(Warn, "registry: marked online but their process is gone: "+strings.Join(stale, ", "),
			"they ended without saying so (killed, or the machine slept); harmless — remove them with relay-mcp session remove ID")
	}
}

func inboxCheck(cfg Config, r *report) {
	dir := filepath.Join(cfg.Home, "inbox")
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		var f *os.File
		if f, err = os.CreateTemp(dir, ".doctor-*"); err == nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	if err != nil {
		r.add(Fail, "inbox directory "+dir+": not writable ("+err.Error()+")", "relay-mcp keeps each session's mail there: fix its owner and mode (chown -R $USER "+cfg.Home+"; chmod 700), or set RELAY_HOME to a writable directory")
		return
	}
	r.add(OK, "inbox directory "+dir+" is writable", "")
}

func clockCheck(cfg Config, n netInfo, r *report) {
	if n.date.IsZero() {
		r.add(Skip, "clock: the relay's time is unknown (its /healthz did not answer)", "")
		return
	}
	// HTTP Date has whole seconds and is stamped while the answer is
	// written: compare with the middle of the round trip, allow 1 s.
	mid := n.sent.Add(n.recv.Sub(n.sent) / 2)
	skew := mid.Sub(n.date)
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	what := fmt.Sprintf("clock: within %d s of the relay's (HTTP Date, 1 s resolution)", int(abs/time.Second)+1)
	if abs > cfg.MaxSkew+time.Second {
		dir := "ahead of"
		if skew < 0 {
			dir = "behind"
		}
		r.add(Fail, fmt.Sprintf("clock: this machine is %s %s the relay's", abs.Round(time.Second), dir),
			"message times and last-seen will read wrong: turn on network time on both machines (Linux: timedatectl set-ntp true; macOS: System Settings → General → Date & Time → Set automatically)")
		return
	}
	r.add(OK, what, "")
}
