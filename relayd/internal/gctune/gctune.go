// Package gctune sets a floor under the garbage collector's heap goal.
//
// A relay holds little (1–3 MB live) and allocates a few KB per message it
// moves. With the runtime's default (GOGC=100, a 4 MB minimum heap) it ran
// a collection every 4 MB of allocation: about ten a second in a round-trip
// echo, each with two short stops of the world and a few milliseconds of
// marking that takes a share of the two cores and slows allocations
// meanwhile — and about a tenth of a relay's CPU per message in a fan-in.
// The floor keeps the goal at a few MB more while the live heap is small, and
// leaves the default (twice the live heap) once it is large: a relay under
// a flood, with much live, is collected as before, so its peak stays where
// it was.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// DefaultFloor is the heap goal kept while the live heap is small: about
// four times fewer collections than the runtime's 4 MB for a relay's live
// heap, for at most this much garbage held between them. 32 MiB made them
// eight times fewer, for twice the memory an idle relay may hold.
const DefaultFloor = 16 << 20

// minHeap is the runtime's smallest heap goal at GOGC=100. It scales with
// GOGC: at GOGC=p the goal is never under minHeap × p/100, so a GOGC above
// floor/minHeap × 100 would set the goal past the floor.
const minHeap = 4 << 20

// Start keeps the heap goal at floor bytes or more until stop is called,
// which gives GOGC back its default. It changes nothing when GOGC is set in
// the environment (the operator chose), nor in a race build (raceBuild).
// The goal is adjusted after each collection, from the live heap that
// collection found.
func Start(floor uint64) (stop func()) {
	if os.Getenv("GOGC") != "" || floor == 0 || raceBuild {
		return func() {}
	}
	return run(floor)
}

// run is Start without its conditions.
func run(floor uint64) (stop func()) {
	t := &tuner{floor: floor, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.adjust()
	t.arm()
	return func() {
		if t.stopped.CompareAndSwap(false, true) {
			debug.SetGCPercent(100)
		}
	}
}

type tuner struct {
	floor   uint64
	stopped atomic.Bool
	sample  []metrics.Sample // read by the finalizer goroutine only, after Start
	percent int
}

// sentinel is garbage made to hear of each collection: its finalizer runs
// once the collection that found it unreachable is done. It holds a
// pointer, so it is never one of the tiny allocations a finalizer may
// never run for.
type sentinel struct{ t *tuner }

func (t *tuner) arm() {
	runtime.SetFinalizer(&sentinel{t}, func(s *sentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.adjust()
		s.t.arm()
	})
}

// adjust sets GOGC so that the next goal, about the larger of live × (1 +
// GOGC/100) and minHeap × GOGC/100, is the floor; never below the default
// 100.
func (t *tuner) adjust() {
	metrics.Read(t.sample)
	live := uint64(0)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	top := max(100, int(t.floor*100/minHeap))
	p := top
	if live > 0 {
		p = min(top, max(100, int(t.floor*100/live)-100))
	}
	// Small changes are not worth a call: the goal moves by less than
	// a tenth.
	if d := p - t.percent; d > t.percent/10 || -d > t.percent/10 || t.percent == 0 {
		debug.SetGCPercent(p)
		t.percent = p
	}
}
