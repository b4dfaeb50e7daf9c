package main

import (
	"math"
	"os"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := m[name]; ok {
				return []byte(v), nil
			}
			return nil, os.ErrNotExist
		}
	}
	none := files(nil)
	v2 := files(map[string]string{"/sys/fs/cgroup/memory.max": "1073741824\n"})
	tests := []struct {
		name      string
		flag      string
		env       string // GOMEMLIMIT
		read      func(string) ([]byte, error)
		want      int64
		wantFrom  string
		wantError bool
	}{
		{"auto without cgroup", "auto", "", none, math.MaxInt64, "none (no GOMEMLIMIT, no cgroup limit)", false},
		{"auto, cgroup v2", "auto", "", v2, 768 << 20, "cgroup", false},
		{"auto, cgroup v2 without a limit", "auto", "", files(map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}), math.MaxInt64, "none (no GOMEMLIMIT, no cgroup limit)", false},
		{"auto, cgroup v1", "auto", "", files(map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "2147483648\n"}), 1536 << 20, "cgroup", false},
		{"auto, cgroup v1 unlimited", "auto", "", files(map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}), math.MaxInt64, "none (no GOMEMLIMIT, no cgroup limit)", false},
		{"auto, small cgroup", "auto", "", files(map[string]string{"/sys/fs/cgroup/memory.max": "10485760"}), minMemoryLimit, "cgroup", false},
		{"auto, GOMEMLIMIT wins", "auto", "300MiB", v2, -1, "GOMEMLIMIT", false},
		{"off", "off", "", v2, math.MaxInt64, "off", false},
		{"size", "1GiB", "", v2, 1 << 30, "flag", false},
		{"bytes", "134217728", "", none, 128 << 20, "flag", false},
		{"too small", "63MiB", "", none, 0, "", true},
		{"not a size", "lots", "", none, 0, "", true},
		{"negative", "-1", "", none, 0, "", true},
		{"empty", "", "", none, 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "GOMEMLIMIT" {
					return tt.env
				}
				return ""
			}
			got, from, err := memoryLimit(tt.flag, getenv, tt.read)
			if tt.wantError {
				if err == nil {
					t.Fatalf("memoryLimit(%q) = %d, %q; want an error", tt.flag, got, from)
				}
				return
			}
			if err != nil || got != tt.want || from != tt.wantFrom {
				t.Errorf("memoryLimit(%q) = %d, %q, %v; want %d, %q", tt.flag, got, from, err, tt.want, tt.wantFrom)
			}
		})
	}
}
