//go:build unix

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
)

// TestBrowserOtherOriginRefused is cross-site WebSocket hijacking tried with
// a real browser: a page from another origin, loaded in headless Chromium,
// opens the relay's sockets (v1 and the older protocol) and would send
// text into an agent. The relay must refuse the upgrade (403), so the page
// never gets a socket. The same page served from an origin listed in
// AllowOrigins (--allow-origin) gets through and its message arrives: the
// control showing the browser, the page and the test can tell the two apart.
func TestBrowserOtherOriginRefused(t *testing.T) {
	browser := findChromium()
	if browser == "" {
		t.Skip("no Chromium found (looked for chromium, chromium-browser, google-chrome, headless_shell; CHROMIUM sets the path): " +
			"the real-browser Origin test is skipped — install Debian's chromium package (.ci/run does) to run it")
	}

	// Two page servers, two origins. Their listeners exist before they
	// serve, so the relay can be told the allowed one first.
	results := make(chan pageResult, 4)
	pages := &originPages{results: results}
	evil := httptest.NewUnstartedServer(pages)
	friend := httptest.NewUnstartedServer(pages)
	friendHost := friend.Listener.Addr().String()
	var upgrades upgradeLog
	r := startRelayWrapped(t, "journal", upgrades.wrap, func(s *Server, _ *hub.Options) { s.AllowOrigins = []string{friendHost} })
	pages.relay = r.url
	pages.next = map[string]string{"http://" + evil.Listener.Addr().String(): "http://" + friendHost + "/"}
	evil.Start()
	defer evil.Close()
	friend.Start()
	defer friend.Close()
	agent, _ := r.connect("CC-1", 0)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stopBrowser := runChromium(t, ctx, browser, evil.URL+"/")
	defer stopBrowser()

	got := map[string]pageResult{}
	for len(got) < 2 {
		select {
		case res := <-results:
			got[res.Origin] = res
		case <-ctx.Done():
			t.Fatalf("the browser reported %d of 2 pages within the time limit (got %+v); its output is above", len(got), got)
		}
	}
	stopBrowser()

	// The foreign page: no socket, on either endpoint, and a 403 at each upgrade.
	for _, s := range got[evil.URL].Sockets {
		if s.Opened || len(s.Frames) > 0 {
			t.Errorf("page from %s opened %s: %+v", evil.URL, s.Path, s)
		}
	}
	if n := len(got[evil.URL].Sockets); n != 2 {
		t.Errorf("foreign page tried %d sockets, want 2", n)
	}
	for _, path := range []string{"/v1/ws", "/"} {
		if st := upgrades.status(evil.URL, path); st != http.StatusForbidden {
			t.Errorf("upgrade of %s from Origin %s answered %d, want 403", path, evil.URL, st)
		}
	}

	// The allowed page: both sockets open, say hello and send.
	for _, s := range got[friend.URL].Sockets {
		if !s.Opened || len(s.Frames) == 0 || (s.Frames[0] != "welcome" && s.Frames[0] != "registered") {
			t.Errorf("page from the allowed origin %s could not use %s: %+v", friend.URL, s.Path, s)
		}
	}
	for _, path := range []string{"/v1/ws", "/"} {
		if st := upgrades.status(friend.URL, path); st != http.StatusSwitchingProtocols {
			t.Errorf("upgrade of %s from the allowed Origin %s answered %d, want 101", path, friend.URL, st)
		}
	}
	from := map[string]string{}
	for range 2 {
		m := expect[*protocol.Message](agent)
		from[m.From] = m.Body
	}
	if !strings.Contains(from["FRIEND-V1"], friend.URL) || !strings.Contains(from["FRIEND-OLD"], friend.URL) {
		t.Errorf("CC-1 got %v, want one message from each socket of the allowed page", from)
	}
	// Nothing from the foreign page reached the agent or the hub.
	agent.send(&protocol.Sessions{Ref: "s"})
	for _, s := range expect[*protocol.Sessions](agent).Sessions {
		if strings.HasPrefix(s.ID, "EVIL") {
			t.Errorf("the relay knows the foreign page's session %s", s.ID)
		}
	}
}

// findChromium returns a Chromium binary's path, or "".
func findChromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// runChromium opens url in headless Chromium, in its own process group so
// the stop function ends the browser and every helper process it started.
// Its output goes to the test log.
func runChromium(t *testing.T, ctx context.Context, browser, url string) (stop func()) {
	t.Helper()
	cmd := exec.Command(browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
		"--user-data-dir="+t.TempDir(), url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", browser, err)
	}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); !strings.Contains(line, "dbus") {
				t.Logf("chromium: %s", line)
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
			<-logged
		})
	}
	go func() {
		<-ctx.Done()
		stop()
	}()
	return stop
}

// upgradeLog records the status the relay answered each WebSocket upgrade
// with, by Origin and path.
type upgradeLog struct {
	mu sync.Mutex
	m  map[string]int
}

func (l *upgradeLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isUpgrade(r) {
			h.ServeHTTP(w, r)
			return
		}
		key := r.Header.Get("Origin") + " " + r.URL.Path
		h.ServeHTTP(&statusWriter{ResponseWriter: w, record: func(code int) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.m == nil {
				l.m = map[string]int{}
			}
			l.m[key] = code
		}}, r)
	})
}

func (l *upgradeLog) status(origin, path string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[origin+" "+path]
}

// statusWriter reports the status written; a hijack is the 101 of an
// accepted upgrade.
type statusWriter struct {
	http.ResponseWriter
	record func(int)
}

func (w *statusWriter) WriteHeader(code int) {
	w.record(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.record(http.StatusSwitchingProtocols)
	return w.ResponseWriter.(http.Hijacker).Hijack()
}

// originPages serves the test page on every origin it is mounted on and
// takes the page's report on POST /result.
type originPages struct {
	relay   string            // ws://127.0.0.1:PORT
	next    map[string]string // origin → page to go to after reporting
	results chan<- pageResult
}

type pageResult struct {
	Origin  string `json:"origin"`
	Sockets []struct {
		Path      string   `json:"path"`
		Opened    bool     `json:"opened"`
		Frames    []string `json:"frames"`
		CloseCode int      `json:"close_code"`
		TimedOut  bool     `json:"timed_out"`
	} `json:"sockets"`
}

func (p *originPages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := "http://" + r.Host
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/result":
		var res pageResult
		if err := json.NewDecoder(r.Body).Decode(&res); err != nil || res.Origin != origin {
			http.Error(w, fmt.Sprintf("bad report %+v: %v", res, err), http.StatusBadRequest)
			return
		}
		p.results <- res
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/":
		prefix := "EVIL"
		if _, ok := p.next[origin]; !ok {
			prefix = "FRIEND"
		}
		cfg, _ := json.Marshal(map[string]string{"relay": p.relay, "prefix": prefix, "next": p.next[origin]})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, originPage, cfg)
	default:
		http.NotFound(w, r)
	}
}

// originPage tries each relay endpoint the way a hostile page would: open
// the socket, say hello, send a message to CC-1, then ask for peers (whose
// answer means the send was handled). It reports what happened to its own
// server, then goes on to the next page.
const originPage = `<!doctype html>
<meta charset="utf-8"><title>relay origin check</title>
<script>
const cfg = %s;
function attempt(path, id) {
  return new Promise(resolve => {
    const res = {path, opened: false, frames: [], close_code: 0, timed_out: false};
    const done = () => { clearTimeout(timer); resolve(res); };
    const timer = setTimeout(() => { res.timed_out = true; try { ws.close(); } catch (e) {} done(); }, 15000);
    const v1 = path === "/v1/ws";
    const ws = new WebSocket(cfg.relay + path);
    ws.onopen = () => {
      res.opened = true;
      ws.send(JSON.stringify(v1 ? {type: "hello", proto: 1, client_id: id} : {type: "register", clientId: id}));
    };
    ws.onmessage = ev => {
      const f = JSON.parse(ev.data);
      res.frames.push(f.type);
      const body = "from a web page at " + location.origin;
      if (f.type === "welcome") {
        ws.send(JSON.stringify({type: "send", ref: "b", to: ["CC-1"], body}));
        ws.send(JSON.stringify({type: "peers", ref: "p"}));
      } else if (f.type === "registered") {
        ws.send(JSON.stringify({type: "message", to: "CC-1", content: body}));
        ws.send(JSON.stringify({type: "get_peers"}));
      } else if (f.type === "peers") {
        ws.close();
      }
    };
    ws.onclose = ev => { res.close_code = ev.code; done(); };
  });
}
(async () => {
  const sockets = [await attempt("/v1/ws", cfg.prefix + "-V1"), await attempt("/", cfg.prefix + "-OLD")];
  await fetch("/result", {method: "POST", body: JSON.stringify({origin: location.origin, sockets})});
  if (cfg.next) location.href = cfg.next;
})();
</script>
<p>checking the relay's Origin rule…</p>
`
