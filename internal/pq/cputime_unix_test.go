//go:build unix

package pq

import "syscall"

// processCPU is the user+system CPU time of the process in nanoseconds (all
// threads, GC included), or -1 when unavailable.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
