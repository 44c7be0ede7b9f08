package server

import (
	"context"
	"runtime"
	"testing"

	"github.com/claude-relay/claude-relay/relayd/internal/loadgen"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// benchRelay is a relay with the memory store, for benchmarks of the relay
// alone.
func benchRelay(b *testing.B) string {
	b.Helper()
	return benchRelayWith(b, store.NewMemory())
}

// BenchmarkEchoRoundTrip: A→relay→B→relay→A with 100-byte bodies, one in
// flight. ns/op is the mean round trip; p50/p99 are reported beside it.
func BenchmarkEchoRoundTrip(b *testing.B) {
	url := benchRelay(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	rtts, err := loadgen.Echo(ctx, url, "", b.N, 100)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(loadgen.Percentile(rtts, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(loadgen.Percentile(rtts, 99).Microseconds()), "p99-µs")
}

// BenchmarkThroughput4to1: four senders, one receiver, 100-byte bodies.
func BenchmarkThroughput4to1(b *testing.B) {
	url := benchRelay(b)
	ctx := context.Background()
	n := max(b.N, 4)
	b.ReportAllocs()
	b.ResetTimer()
	res, err := loadgen.Throughput(ctx, url, "", 4, n, 100, 256)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.PerSecond(), "msgs/s")
}

// BenchmarkIdleConnections reports the heap held per idle connection on the
// relay's side (this process also holds the clients, so it is measured as
// the growth of the hub's and handlers' heap with clients excluded by a
// baseline of client-only connections is not possible here; see `relayd
// load idle` for the RSS of a real relayd process).
func BenchmarkIdleConnections(b *testing.B) {
	url := benchRelay(b)
	ctx := context.Background()
	const n = 500
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		cs, err := loadgen.Idle(ctx, url, "", n)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n/1024, "KiB/conn(both-sides)")
		loadgen.CloseAll(cs)
	}
}
