package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func ptr(v float64) *float64 { return &v }

func TestMetricMet(t *testing.T) {
	tests := []struct {
		name string
		m    Metric
		want bool
	}{
		{"API twice the raw publish → met", Metric{Ours: 2000, Anchor: ptr(1000), Target: Target{MinRatio: 2}}, true},
		{"API at 1.9× the raw publish → not met", Metric{Ours: 1900, Anchor: ptr(1000), Target: Target{MinRatio: 2}}, false},
		{"ratio target without an anchor → not met", Metric{Ours: 2000, Target: Target{MinRatio: 2}}, false},
		{"ratio target with a zero anchor → not met", Metric{Ours: 2000, Anchor: ptr(0), Target: Target{MinRatio: 2}}, false},
		{"p99 1.5 ms below 2 ms → met", Metric{Ours: 1.5, Target: Target{Below: 2}}, true},
		{"p99 exactly 2 ms is not below 2 ms → not met", Metric{Ours: 2, Target: Target{Below: 2}}, false},
		{"rebuild at 60 % but 1M in 6 s → not met",
			Metric{Ours: 166_667, Anchor: ptr(270_000), Target: Target{MinRatio: 0.55, AtLeast: 200_000}}, false},
		{"rebuild at 60 % and 1M in 4 s → met",
			Metric{Ours: 250_000, Anchor: ptr(400_000), Target: Target{MinRatio: 0.55, AtLeast: 200_000}}, true},
		{"no target, no problems → met (a row for comparison)", Metric{Ours: 1500, Peer: ptr(3000)}, true},
		{"no target but a problem → not met", Metric{Ours: 1500, Problems: []string{"2 failed"}}, false},
		{"fast but with failed requests → not met",
			Metric{Ours: 0.5, Target: Target{Below: 2}, Problems: []string{"3 requests failed"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.Met(); got != tt.want {
				t.Errorf("Met() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResultsJSONShape(t *testing.T) {
	metrics := []Metric{
		{Key: "append_always", Ours: 3000.1234, Anchor: ptr(1000), Peer: ptr(6000),
			Target: Target{Text: "≥ 2.0×", MinRatio: 2}},
		{Key: "restart", Ours: 1.25, Target: Target{Text: "< 1 s", Below: 1}},
	}
	b, err := resultsJSON(metrics)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"target": "< 1 s"`) {
		t.Errorf("targets are escaped or missing:\n%s", b)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("results.json does not parse: %v\n%s", err, b)
	}
	if len(got) != 2 {
		t.Fatalf("got %d entries, want 2: %s", len(got), b)
	}
	for key, entry := range got {
		for _, field := range []string{"ours", "anchor", "ratio", "peer", "peer_ratio", "target", "met"} {
			if _, ok := entry[field]; !ok {
				t.Errorf("%s has no %q: %v", key, field, entry)
			}
		}
		if len(entry) != 7 {
			t.Errorf("%s has fields beyond the seven: %v", key, entry)
		}
	}
	a := got["append_always"]
	if a["ours"] != 3000.123 || a["anchor"] != 1000.0 || a["ratio"] != 3.0 || a["target"] != "≥ 2.0×" || a["met"] != true ||
		a["peer"] != 6000.0 || a["peer_ratio"] != 0.5 {
		t.Errorf("append_always = %v", a)
	}
	r := got["restart"]
	if r["anchor"] != nil || r["ratio"] != nil || r["peer"] != nil || r["peer_ratio"] != nil || r["met"] != false {
		t.Errorf("restart = %v, want null anchor, ratio, peer and peer_ratio, not met", r)
	}
}

func TestResultsJSONRefusesDuplicateKeys(t *testing.T) {
	if _, err := resultsJSON([]Metric{{Key: "rss"}, {Key: "rss"}}); err == nil {
		t.Fatal("two metrics with one key were accepted")
	}
}

func TestMarkdownTable(t *testing.T) {
	r := Report{
		Header: []string{"date: 2026-01-01"},
		Metrics: []Metric{
			{Key: "get_p99", Name: "GET p99", Unit: "ms", Ours: 3.2, Anchor: ptr(0.8), Peer: ptr(1.6),
				Target: Target{Text: "< 2 ms", Below: 2}},
			{Key: "append_contended", Name: "API append, 64 clients on 8", Unit: "events/s", Ours: 1500,
				Peer: ptr(3000)},
			{Key: "append_interval", Name: "API append, interval", Unit: "events/s", Ours: 7000, Anchor: ptr(10000),
				Target: Target{Text: "≥ 0.70× raw", MinRatio: 0.7}},
			{Key: "rss", Name: "peak RSS", Unit: "MiB", Ours: 250, Target: Target{Text: "< 300 MiB", Below: 300},
				Problems: []string{"serve exited 1"}},
		},
	}
	md := r.Markdown()
	for _, want := range []string{
		"| metric | ours | anchor | ratio | PostgreSQL | ours/PostgreSQL | target | met |",
		"| GET p99 (`get_p99`) | 3.2 ms | 0.8 ms | 4.00× | 1.6 ms | 2.00× | < 2 ms | ✗ |",
		"| API append, 64 clients on 8 (`append_contended`) | 1500 events/s | — | — | 3000 events/s | 0.50× | — | — |",
		"| API append, interval (`append_interval`) | 7000 events/s | 10000 events/s | 0.70× | — | — | ≥ 0.70× raw | ✓ |",
		"| peak RSS (`rss`) | 250 MiB | — | — | — | — | < 300 MiB | ✗ |",
		"- `rss`: serve exited 1",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
