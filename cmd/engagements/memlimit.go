package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// minMemoryLimit is the smallest --memory-limit taken: below it the garbage
// collector would run all the time for the service's own working set.
const minMemoryLimit = 64 << 20

// cgroupFiles are where the process's memory limit is read from: cgroup v2,
// then v1.
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// cgroupMemoryLimit is the memory limit of the process's cgroup, when it
// has one (v2's "max" and v1's near-2^63 value mean none).
func cgroupMemoryLimit(read func(string) ([]byte, error)) (int64, bool) {
	for _, f := range cgroupFiles {
		b, err := read(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false // "max", or v1's "unlimited"
		}
		return n, true
	}
	return 0, false
}

// memoryLimit resolves --memory-limit to the soft limit to hand
// debug.SetMemoryLimit and says where it came from. auto: GOMEMLIMIT when
// set (the runtime has applied it: limit -1, leave it), else three quarters
// of the cgroup's limit (room for what Go does not count: the kernel's page
// cache is not ours, but thread stacks outside Go and fragmentation are),
// else none: a fixed default (512MiB was tried) held a first start at 1M
// events to ~560 MiB, but with the live set near it the collector ran all
// the time — first start 126 s instead of 38 s, GET p99 817 ms instead of
// 29 ms under the bench's load (make bench, README) — so without a limit
// the environment gives, serve sets none. off: no limit (math.MaxInt64,
// Go's default).
// Otherwise a size: bytes, or with KiB, MiB or GiB, at least
// minMemoryLimit.
func memoryLimit(flag string, getenv func(string) string, read func(string) ([]byte, error)) (int64, string, error) {
	switch flag = strings.TrimSpace(flag); flag {
	case "auto":
		if getenv("GOMEMLIMIT") != "" {
			return -1, "GOMEMLIMIT", nil
		}
		if n, ok := cgroupMemoryLimit(read); ok {
			return max(n/4*3, minMemoryLimit), "cgroup", nil
		}
		return math.MaxInt64, "none (no GOMEMLIMIT, no cgroup limit)", nil
	case "off":
		return math.MaxInt64, "off", nil
	}
	n, err := parseSize(flag)
	if err != nil || n < minMemoryLimit {
		return 0, "", fmt.Errorf("--memory-limit must be auto, off or a size of at least 64MiB, such as 1GiB, not %q", flag)
	}
	return n, "flag", nil
}

// osMemoryLimit is memoryLimit on the process's own environment and cgroup.
func osMemoryLimit(flag string) (int64, string, error) {
	return memoryLimit(flag, os.Getenv, os.ReadFile)
}
