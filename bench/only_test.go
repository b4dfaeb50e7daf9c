package main

import (
	"maps"
	"slices"
	"testing"
)

func TestParseOnly(t *testing.T) {
	tests := []struct {
		in      string
		want    []string // sorted; nil: everything runs
		wantErr bool
	}{
		{in: "", want: nil},
		{in: " , ", want: nil},
		{in: "append_always", want: []string{"append_always"}},
		{in: "append_always, peer", want: []string{"append_always", "peer"}},
		{in: "peer,peer,rebuild", want: []string{"peer", "rebuild"}},
		{in: "append", wantErr: true},
		{in: "peer,get_p99", want: []string{"get_p99", "peer"}},
		{in: "peer,nope", wantErr: true},
		{in: "Peer", wantErr: true},
		{in: "asof", want: []string{"asof_p99"}},
		{in: "asof, get,restart", want: []string{"asof_p99", "get_p99", "restart", "rss"}},
		{in: "proofs,backup", want: []string{"backup", "proof_bytes", "proof_verify", "restore"}},
	}
	for _, tt := range tests {
		got, err := parseOnly(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseOnly(%q): error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, tt.want) {
			t.Errorf("parseOnly(%q) = %v, want %v", tt.in, keys, tt.want)
		}
		o := options{only: got}
		for _, part := range groups["appends"] {
			if want := tt.want == nil || slices.Contains(tt.want, part); !tt.wantErr && o.want(part) != want {
				t.Errorf("parseOnly(%q): want(%q) = %v", tt.in, part, !want)
			}
		}
	}
}
