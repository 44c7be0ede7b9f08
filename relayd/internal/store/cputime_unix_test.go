//go:build unix

package store

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) this process has used so
// far: on a shared machine a benchmark's CPU per message moves far less
// with the load than its wall-clock time does.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
