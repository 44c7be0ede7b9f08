package e2e

// The figures of the budgets in docs/agents.md and docs/benchmarks.md:
// spawn → tools/list, send → receive through two relay-mcp, idle RSS, and
// the bytes a typical session adds to an agent's context.
//
//	go test -run '^$' -bench E2E -count 5 ./relay-mcp/e2e
//
// and the latency of a message between two agents, BenchmarkSendReceive.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// benchRelay is a memory-store relay without the chatter limits made for
// agents (100 requests in 10 s): a benchmark makes thousands.
func benchRelay(b *testing.B) *relaytest.Relay {
	return relaytest.Start(b, append(noLimits, "--store", "memory")...)
}

// One op: relay-mcp spawned over stdio until its tools/list is answered
// (its exit after stdin closes is not timed).
func BenchmarkE2ESpawn(b *testing.B) {
	r := benchRelay(b)
	home := b.TempDir()
	var spawns []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		a := spawnAgent(b, r.URL(), fmt.Sprintf("M-%d", i), home, benchEnv...) // timed to tools/list, not to the relay
		if _, err := a.cs.ListTools(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
		spawns = append(spawns, time.Since(start))
		b.StopTimer()
		a.cs.Close()
		b.StartTimer()
	}
	reportLatency(b, spawns, "spawn-")
}

// BenchmarkE2EIdleRSS reports relay-mcp's RSS at rest (idle-RSS-MiB) after
// b.N messages read as BenchmarkSendReceive's wait mode reads them (whose
// latencies it reports too).
func BenchmarkE2EIdleRSS(b *testing.B) {
	r := benchRelay(b)
	home := b.TempDir()
	a, rd := connectedPair(b, r.URL(), home, "LA", "LB")
	benchSendReceive(b, a, rd, "wait")
	time.Sleep(500 * time.Millisecond) // relay-mcp at rest is what is measured
	b.ReportMetric(float64(rssKiB(rd.cmd.Process.Pid))/1024, "idle-RSS-MiB")
}

// BenchmarkE2EContextBytes measures what a typical session's tool calls
// add to an agent's context: tools/list once, 10 sends, 10 receives of 1–3
// messages, 2 peers, 2 status. Text is what clients show the model;
// structured content is sent beside it (clients that pass it on pay that
// too). One op is one such session, against a relay of its own; the bytes
// are reported per session, and the table is logged (and written to
// $RELAY_CONTEXT_TABLE when set).
func BenchmarkE2EContextBytes(b *testing.B) {
	var table string
	var text, sc, wire int
	for b.Loop() {
		table, text, sc, wire = contextSession(b)
	}
	b.ReportMetric(float64(text), "text-B/session")
	b.ReportMetric(float64(sc), "structured-B/session")
	b.ReportMetric(float64(wire), "result-B/session")
	b.Logf("context bytes of a typical session:\n%s", table)
	if out := os.Getenv("RELAY_CONTEXT_TABLE"); out != "" {
		os.WriteFile(out, []byte(table), 0o644)
	}
}

// contextSession runs the session of BenchmarkE2EContextBytes and returns
// its table and its totals.
func contextSession(t testing.TB) (table string, text, sc, wire int) {
	r := relaytest.Start(t, "--store", "memory")
	home := t.TempDir()
	all := connectedAgents(t, r.URL(), home, "CC-1", "CC-2", "CODEX")
	me, peer := all[0], all[1] // and CODEX, online for relay_peers
	type row struct {
		calls          int
		text, sc, wire int
	}
	rows := map[string]*row{}
	order := []string{"tools/list", "relay_send", "relay_receive", "relay_peers", "relay_status"}
	for _, k := range order {
		rows[k] = &row{}
	}
	tl, err := me.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tl.Tools)
	rows["tools/list"].calls, rows["tools/list"].text, rows["tools/list"].wire = 1, len(b), len(b)

	call := func(name string, args map[string]any) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := me.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %v", name, err, res)
		}
		rw := rows[name]
		rw.calls++
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				rw.text += len(tc.Text)
			}
		}
		sc, _ := json.Marshal(res.StructuredContent)
		rw.sc += len(sc)
		all, _ := json.Marshal(res)
		rw.wire += len(all)
	}
	bodies := []string{
		"Tests pass on main after the auth refactor (commit 3f9c2ab). I'm moving on to the session store.",
		"Can you hold off on migrations/0042? I'm changing the users table in the same release.",
		"Done: rate limiter merged. Config key is limits.per_client; default 50/s. Docs in docs/ops.md.",
	}
	batches := []int{1, 2, 3, 1, 2, 3, 1, 2, 3, 2} // 20 messages in 10 receives
	for i, n := range batches {
		call("relay_send", map[string]any{"to": "CC-2", "message": bodies[i%3]})
		for j := range n {
			peer.text(t, "relay_send", map[string]any{"to": "CC-1", "message": bodies[(i+j)%3], "thread": "release"})
		}
		me.waitUnread(t, n) // mail stored
		call("relay_receive", nil)
	}
	call("relay_peers", nil)
	call("relay_peers", nil)
	call("relay_status", nil)
	call("relay_status", nil)

	var tb strings.Builder
	fmt.Fprintf(&tb, "| call | calls | text bytes | structured bytes | JSON-RPC result bytes |\n|---|---:|---:|---:|---:|\n")
	var tt, ts, tw int
	for _, k := range order {
		rw := rows[k]
		fmt.Fprintf(&tb, "| %s | %d | %d | %d | %d |\n", k, rw.calls, rw.text, rw.sc, rw.wire)
		tt, ts, tw = tt+rw.text, ts+rw.sc, tw+rw.wire
	}
	fmt.Fprintf(&tb, "| **total** | 25 | **%d** | %d | %d |\n", tt, ts, tw)
	fmt.Fprintf(&tb, "\n(message bodies %d–%d bytes)\n", len(bodies[1]), len(bodies[0]))
	return tb.String(), tt, ts, tw
}

func rssKiB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}
