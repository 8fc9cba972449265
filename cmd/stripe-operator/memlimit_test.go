package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// The soft memory limit follows the container's: cgroup v2's memory.max, else v1's memory.limit_in_bytes; none
// without a limit; GOMEMLIMIT, when set, wins.
func TestMemoryLimitFromTheCgroup(t *testing.T) {
	write := func(t *testing.T, root, file, content string) {
		t.Helper()
		p := filepath.Join(root, file)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	v2, v1, unlimited, v1unlimited := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	write(t, v2, "memory.max", "536870912\n")
	write(t, v1, "memory/memory.limit_in_bytes", "268435456\n")
	write(t, unlimited, "memory.max", "max\n")
	write(t, v1unlimited, "memory/memory.limit_in_bytes", "9223372036854771712\n")
	for _, c := range []struct {
		name string
		root string
		want int64
	}{
		{"cgroup v2", v2, 536870912},
		{"cgroup v1", v1, 268435456},
		{"v2 without a limit", unlimited, 0},
		{"v1 without a limit", v1unlimited, 0},
		{"no cgroup file", t.TempDir(), 0},
	} {
		got, ok := containerMemoryLimit(c.root)
		if got != c.want || ok != (c.want != 0) {
			t.Errorf("%s: %d, %v; want %d", c.name, got, ok, c.want)
		}
	}

	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	t.Setenv("GOMEMLIMIT", "")
	if got := setMemoryLimit(v2); got != 483183820 || debug.SetMemoryLimit(-1) != got {
		t.Errorf("soft limit %d (runtime %d), want 90%% of 512 MiB", got, debug.SetMemoryLimit(-1))
	}
	t.Setenv("GOMEMLIMIT", "300MiB")
	debug.SetMemoryLimit(before)
	if got := setMemoryLimit(v2); got != 0 || debug.SetMemoryLimit(-1) != before {
		t.Error("GOMEMLIMIT was overridden")
	}
}
