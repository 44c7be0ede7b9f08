package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// BenchmarkSendReceive measures what an agent waits for between its
// relay_send and the peer's relay_receive showing the message: relay_send
// on A, then relay_receive on B until the message is there, through two
// real relay-mcp processes driven by the go-sdk client over stdio and a real
// relayd on loopback. Each iteration is one message; p50 and p99 are
// reported as metrics (ns/op is their mean). Run with
//
//	go test -run '^$' -bench SendReceive -benchtime 200x ./relay-mcp/e2e
//
// Sub-benchmarks: the store (journal, the default of a new data directory;
// sqlite; memory), and how B reads:
// wait (relay_receive wait_seconds, returns when the message arrives) or
// poll (relay_receive without a wait, called again until it is there).
// "floor" is the yardstick in the same run: one relay_status on A and one
// on B, the two MCP round trips over stdio with no relay work. And
// journal/wait-full-inbox is wait with a receiver whose inbox already holds
// 1 900 read messages, as a session's does after a while.
func BenchmarkSendReceive(b *testing.B) {
	for _, store := range []string{"journal", "sqlite", "memory"} {
		b.Run(store, func(b *testing.B) {
			extra := append(slices.Clone(noLimits), "--store", store)
			r := relaytest.Start(b, extra...)
			home := b.TempDir()
			a := spawnBenchAgent(b, r.URL(), "BENCH-A", home)
			p := spawnBenchAgent(b, r.URL(), "BENCH-B", home)
			for _, mode := range []string{"wait", "poll", "floor"} {
				b.Run(mode, func(b *testing.B) { benchSendReceive(b, a, p, mode) })
			}
			if store == "journal" {
				full := b.TempDir()
				fillInbox(b, filepath.Join(full, "inbox", "BENCH-F"), inbox.DefaultLimit-100)
				f := spawnBenchAgent(b, r.URL(), "BENCH-F", full)
				b.Run("wait-full-inbox", func(b *testing.B) { benchSendReceive(b, a, f, "wait") })
			}
		})
	}
}

// benchEnv runs relay-mcp as users do: spawnAgent logs at debug for the
// tests' failure output (a line written to a pipe for every message) and
// adds structured content to tool results for the tests that read it
// (JSON encoded beside the text of every result); both are off by default.
var benchEnv = []string{"RELAY_LOG_LEVEL=info", "RELAY_STRUCTURED_CONTENT=false"}

// spawnBenchAgent is spawnAgent with benchEnv. It returns once the agent
// is connected to the relay (read from relay_status' text: "connected as
// ID to URL …").
func spawnBenchAgent(b *testing.B, relayURL, id, home string) *agentProc {
	b.Helper()
	a := spawnAgent(b, relayURL, id, home, benchEnv...)
	testkit.WaitFor(b, 20*time.Second, id+" connected", func() bool {
		return strings.HasPrefix(a.text(b, "relay_status", nil), "connected as ")
	})
	return a
}

// fillInbox stores n read messages in the inbox in dir: a session that has
// run for a while (an inbox keeps inbox.DefaultLimit).
func fillInbox(b *testing.B, dir string, n int) {
	in, err := inbox.Open(dir, inbox.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	msgs := make([]protocol.Message, n)
	ids := make([]string, n)
	for i := range msgs {
		ids[i] = fmt.Sprintf("0190f0c2-0000-7000-8000-%012d", i)
		msgs[i] = protocol.Message{ID: ids[i], From: "BENCH-OLD", To: protocol.Recipients{"BENCH-F"}, Body: strings.Repeat("an older message ", 12), TS: time.Now()}
	}
	if _, err := in.Add(msgs...); err != nil {
		b.Fatal(err)
	}
	if err := in.MarkRead(ids...); err != nil {
		b.Fatal(err)
	}
}

// noLimits lifts the relay's chatter limits, made for agents (100 requests
// in 10 s): a benchmark makes thousands.
var noLimits = []string{"--client-limit", "0", "--pair-limit", "0", "--global-limit", "0", "--new-id-limit", "0"}

func benchSendReceive(b *testing.B, a, p *agentProc, mode string) {
	lat := make([]time.Duration, 0, b.N)
	sends := make([]time.Duration, 0, b.N) // relay_send's share
	recv := map[string]any{}
	if mode == "wait" {
		recv["wait_seconds"] = 10
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := fmt.Sprintf("bench %s %d", mode, i)
		start := time.Now()
		if mode == "floor" {
			a.text(b, "relay_status", nil)
			p.text(b, "relay_status", nil)
			lat = append(lat, time.Since(start))
			continue
		}
		if got := a.text(b, "relay_send", map[string]any{"to": p.id, "message": body}); !strings.Contains(got, p.id+": delivered") {
			b.Fatalf("send %d: %s", i, got)
		}
		sends = append(sends, time.Since(start))
		for tries := 0; ; tries++ {
			if tries == 10000 {
				b.Fatalf("%q never reached %s", body, p.id)
			}
			got := p.text(b, "relay_receive", recv)
			if strings.Contains(got, body) {
				break
			}
			if strings.Contains(got, "bench ") {
				b.Fatalf("receive %d: another message: %s", i, got)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, lat, "")
	reportLatency(b, sends, "send-")
}

// reportLatency reports the p50 and p99 of lat in milliseconds, their
// units named with prefix.
func reportLatency(b *testing.B, lat []time.Duration, prefix string) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(q(0.5), prefix+"p50-ms")
	b.ReportMetric(q(0.99), prefix+"p99-ms")
}
