//go:build unix

package api_test

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time this process has used so far, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per operation since start: on a
// shared machine it varies far less than events/s, which depends on how
// much CPU the other processes leave.
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 && start > 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N)/1e3, "cpu-µs/op")
	}
}
