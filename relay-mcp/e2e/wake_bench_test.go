package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/filelock"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// BenchmarkClaudeWake measures the wake path with the real Claude Code CLI:
// a peer's message accepted by the relay → the idle CC-2 session's next
// request at the scripted API, 20 times (p50 and max), and how much of it
// is the relay's (accepted → stored in CC-2's inbox). Then the idle wake
// listener's resident memory and CPU over 10 s of idling. Run with
//
//	go test -run '^$' -bench ClaudeWake -benchtime 1x ./relay-mcp/e2e
func BenchmarkClaudeWake(b *testing.B) {
	const n = 20
	claudeBin(b)
	r := relaytest.Start(b)
	api := startAPI(b)
	rh := b.TempDir()
	cc2 := newCC(b, api, r, "CC-2", rh)
	cc2.env = append(cc2.env, "RELAY_WAKE_MAX=1000") // 20 wakes in a row without a person
	cc2.installHooks()
	s := cc2.startStream()
	s.say("wait for pings")
	s.waitResults(1, 90*time.Second)
	peer := spawnBenchAgent(b, r.URL(), "CC-1", b.TempDir())
	dir := filepath.Join(rh, "inbox", "CC-2")

	listening := func() bool {
		l, err := filelock.AcquireWithin(filepath.Join(dir, "wake.lock"), 0)
		if err != nil {
			return true // held: a listener waits
		}
		l.Release()
		return false
	}
	var total, relay []time.Duration
	b.ResetTimer()
	for i := 0; i < n; i++ {
		testkit.WaitFor(b, 30*time.Second, "a wake listener", listening)
		before := len(api.Requests("CC-2"))
		body := fmt.Sprintf("ping %d", i)
		if got := peer.text(b, "relay_send", map[string]any{"to": "CC-2", "message": body}); !strings.Contains(got, "CC-2: delivered") {
			b.Fatalf("send: %s", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req, err := api.WaitRequest(ctx, "CC-2", before)
		cancel()
		if err != nil {
			b.Fatalf("wake %d: %v", i, err)
		}
		if !strings.Contains(req.LastUserText(), body) {
			b.Fatalf("wake %d: the request lacks %q", i, body)
		}
		e := findEntry(b, dir, body)
		total = append(total, req.At.Sub(e.TS))
		relay = append(relay, e.ReceivedAt.Sub(e.TS))
		s.waitResults(i+2, 60*time.Second)
	}
	b.StopTimer()
	p50 := func(ds []time.Duration) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	maxOf := func(ds []time.Duration) time.Duration {
		m := ds[0]
		for _, d := range ds {
			m = max(m, d)
		}
		return m
	}
	b.ReportMetric(float64(p50(total).Milliseconds()), "p50-accepted-to-request-ms")
	b.ReportMetric(float64(maxOf(total).Milliseconds()), "max-accepted-to-request-ms")
	b.ReportMetric(float64(p50(relay).Microseconds())/1000, "p50-relay-share-ms")
	b.ReportMetric(float64(maxOf(relay).Microseconds())/1000, "max-relay-share-ms")

	// The idle listener: RSS, and CPU time used over 10 s of waiting.
	testkit.WaitFor(b, 30*time.Second, "a wake listener", listening)
	pid := listenerPID(b)
	rss, anon, cpu0 := procUsage(b, pid)
	time.Sleep(10 * time.Second) // idling is what is measured
	_, _, cpu1 := procUsage(b, pid)
	b.ReportMetric(float64(rss)/1024, "listener-rss-MiB")
	b.ReportMetric(float64(anon)/1024, "listener-private-MiB")
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/1000, "listener-cpu-ms-per-10s")
}

func findEntry(t testing.TB, dir, body string) inbox.Entry {
	t.Helper()
	in, err := inbox.Open(dir, inbox.Options{LockWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for _, e := range in.List(inbox.Query{IncludeRead: true}) {
		if e.Body == body {
			return e
		}
	}
	t.Fatalf("%q is not in %s", body, dir)
	return inbox.Entry{}
}

// listenerPID finds the running `relay-mcp hook claude-code --wake Stop`.
func listenerPID(t testing.TB) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(string(cmd), bins.relayMCP+"\x00") && strings.Contains(string(cmd), "--wake\x00Stop") {
			return pid
		}
	}
	t.Skip("no wake listener process found in /proc (Linux only)")
	return 0
}

// procUsage reads a process's resident memory (KiB: all, and private —
// the rest is the binary's file pages, shared with the session's relay-mcp
// server) and CPU time so far.
func procUsage(t testing.TB, pid int) (int, int, time.Duration) {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	rss, anon := 0, 0
	for _, l := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			rss, _ = strconv.Atoi(strings.Fields(l)[1])
		}
		if strings.HasPrefix(l, "RssAnon:") {
			anon, _ = strconv.Atoi(strings.Fields(l)[1])
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	ut, _ := strconv.Atoi(f[11]) // utime, clock ticks (field 14)
	stt, _ := strconv.Atoi(f[12])
	return rss, anon, time.Duration(ut+stt) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
