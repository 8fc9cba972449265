package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimitShare is the part of the container's memory limit given to the Go runtime as its soft limit: the rest
// is for what the runtime does not count (the binary, thread stacks outside the heap, memory not yet returned).
const memoryLimitShare = 0.9

// setMemoryLimit gives the Go runtime a soft memory limit of 90% of the container's memory limit, unless GOMEMLIMIT
// is set: Go does not read cgroup limits, so without it the heap may grow to twice what is live before a collection
// (a renewal day's burst) and the container be killed for memory it did not need to keep. It returns the limit set,
// or 0. root is the cgroup file system's mount point.
func setMemoryLimit(root string) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit, ok := containerMemoryLimit(root)
	if !ok {
		return 0
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	return soft
}

// containerMemoryLimit reads the memory limit of the process's cgroup: cgroup v2's memory.max, else v1's
// memory.limit_in_bytes; false when there is none ("max", or v1's page-rounded maximum).
func containerMemoryLimit(root string) (int64, bool) {
	for _, f := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		data, err := os.ReadFile(filepath.Join(root, f)) //nolint:gosec // G304: the cgroup mount and fixed names
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(data))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
