//go:build !unix

package pq

// processCPU is unavailable on this platform.
func processCPU() int64 { return -1 }
