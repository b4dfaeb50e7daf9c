package main

import (
	"maps"
	"slices"
	"testing"
)

func TestParseOnly(t *testing.T) {
	tests := []struct {
		name    string
		list    string
		want    []string // the parts selected; nil: all
		wantErr bool
	}{
		{"empty: every measurement", "", nil, false},
		{"one", "asof", []string{"asof"}, false},
		{"several, with spaces", "asof, get,restart", []string{"asof", "get", "restart"}, false},
		{"an unknown name → error", "asof,asof_p99", nil, true},
		{"an empty name → error", "asof,", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			only, err := parseOnly(tt.list)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseOnly(%q) error = %v, want error %v", tt.list, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got := slices.Sorted(maps.Keys(only)); !slices.Equal(got, slices.Sorted(slices.Values(tt.want))) {
				t.Fatalf("parseOnly(%q) = %v, want %v", tt.list, got, tt.want)
			}
			o := options{only: only}
			for _, part := range parts {
				if want := tt.want == nil || slices.Contains(tt.want, part); o.want(part) != want {
					t.Errorf("want(%q) = %v, want %v", part, o.want(part), want)
				}
			}
		})
	}
}
