package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
)

func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sink holds a live heap across collections.
var sink [][]byte

func TestFloorRaisesTheGoalOfASmallHeap(t *testing.T) {
	const floor = 64 << 20
	stop := run(floor) // Start, but in a race build too
	defer stop()
	runtime.GC()
	testkit.WaitFor(t, 5*time.Second, "a heap goal near the floor", func() bool {
		runtime.GC()
		return read("/gc/heap/goal:bytes") >= floor*9/10
	})
	if p := read("/gc/gogc:percent"); p <= 100 {
		t.Fatalf("GOGC is %d with a live heap of %d bytes; want it raised for the floor", p, read("/gc/heap/live:bytes"))
	}
	stop()
	if p := read("/gc/gogc:percent"); p != 100 {
		t.Fatalf("GOGC is %d after stop; want the default 100", p)
	}
}

func TestLargeLiveHeapKeepsTheDefault(t *testing.T) {
	const floor = 8 << 20
	stop := run(floor)
	defer stop()
	for range 32 { // 32 MB live: four times the floor
		sink = append(sink, make([]byte, 1<<20))
	}
	defer func() { sink = nil }()
	testkit.WaitFor(t, 5*time.Second, "GOGC back at 100 with a live heap past the floor", func() bool {
		runtime.GC()
		return read("/gc/gogc:percent") == 100
	})
}

func TestGOGCInTheEnvironmentWins(t *testing.T) {
	t.Setenv("GOGC", "100")
	before := debug.SetGCPercent(100)
	stop := Start(64 << 20)
	defer stop()
	runtime.GC()
	runtime.GC()
	if p := read("/gc/gogc:percent"); p != uint64(before) {
		t.Fatalf("GOGC is %d; GOGC=100 in the environment should have left it at %d", p, before)
	}
}
