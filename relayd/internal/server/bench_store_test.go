package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/loadgen"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
	"github.com/claude-relay/claude-relay/relayd/internal/wstest"
)

// benchStores are the stores the relay benchmarks compare: the durable one
// must stay within 2× of memory and above 20 000 messages/s.
var benchStores = []struct {
	name string
	open func(b *testing.B) store.Store
}{
	{"memory", func(*testing.B) store.Store { return store.NewMemory() }},
	{"sqlite", func(b *testing.B) store.Store {
		st, err := store.Open(context.Background(), b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return st
	}},
}

func benchRelayWith(b *testing.B, st store.Store) string {
	b.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// As `relayd load` asks of the relay it measures: room for a receiver
	// that falls behind four senders, which the default 10 000 is not.
	srv := &Server{Logger: log, Hub: hub.New(hub.Options{Store: st, Logger: log, MaxQueue: 1_000_000})}
	b.Cleanup(func() { st.Close() }) // after the relay's shutdown
	return wstest.URL(wstest.Serve(b, srv.Handler(), srv.Shutdown))
}

// BenchmarkStoreThroughput4to1 is BenchmarkThroughput4to1 through each
// store: four senders, one receiver, 100-byte bodies, every message stored
// before it is accepted.
//
//	go test -run XXX -bench StoreThroughput -count 5 ./internal/server/
func BenchmarkStoreThroughput4to1(b *testing.B) {
	for _, k := range benchStores {
		b.Run(k.name, func(b *testing.B) {
			url := benchRelayWith(b, k.open(b))
			n := max(b.N, 4)
			b.ReportAllocs()
			b.ResetTimer()
			res, err := loadgen.Throughput(context.Background(), url, "", 4, n, 100, 256)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.PerSecond(), "msgs/s")
		})
	}
}
