package store

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
)

// Benchmarks compare the stores on the relay's hot paths. msgs/s is the
// figure the relay budget is written in (≥ 20 000 durable messages/s).
//
//	go test -run XXX -bench . -benchtime 2s ./internal/store/

var benchWriters = []int{1, 8}

var benchRecipients = []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"}

func benchMsg(n uint64, to string) Message {
	m := newMsg("sender", to)
	m.ID = fmt.Sprintf("0193a1b2-0000-7000-9000-%012d", n)
	m.Body = "the bug is in auth.js line 42: the token is compared with == instead of a constant-time compare"
	return m
}

func BenchmarkAppend(b *testing.B) {
	for _, k := range storeKinds {
		for _, writers := range benchWriters {
			b.Run(fmt.Sprintf("%s/writers=%d", k.name, writers), func(b *testing.B) {
				s := k.open(b)
				ctx := context.Background()
				var n atomic.Uint64
				b.ReportAllocs()
				b.ResetTimer()
				if writers == 1 {
					for i := range b.N {
						to := benchRecipients[i%len(benchRecipients)]
						if _, err := AppendWait(ctx, s, benchMsg(n.Add(1), to), []string{to}, 0); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					// RunParallel starts parallelism × GOMAXPROCS goroutines.
					b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							i := n.Add(1)
							to := benchRecipients[i%uint64(len(benchRecipients))]
							if _, err := AppendWait(ctx, s, benchMsg(i, to), []string{to}, 0); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

func BenchmarkPending100(b *testing.B) {
	for _, k := range storeKinds {
		b.Run(k.name, func(b *testing.B) {
			s := k.open(b)
			ctx := context.Background()
			// A mailbox of 1000 with 100 read: Pending must seek, not scan.
			for i := range 1000 {
				if _, err := AppendWait(ctx, s, benchMsg(uint64(i), "r"), []string{"r"}, 0); err != nil {
					b.Fatal(err)
				}
			}
			s.Ack(ctx, "r", 100)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ds, err := s.Pending(ctx, "r", 0, 100, false)
				if err != nil || len(ds) != 100 {
					b.Fatalf("Pending = %d deliveries, %v", len(ds), err)
				}
			}
		})
	}
}
