package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Target is what a metric must reach. Each non-zero field is one condition
// and all of them must hold; a metric with problems never meets its target.
type Target struct {
	// Text is how the target reads in the table and the JSON, e.g. "≥ 2.0×".
	Text string
	// MinRatio: ours/anchor must be at least this (and the anchor known).
	MinRatio float64
	// AtLeast: ours must be at least this.
	AtLeast float64
	// Below: ours must be below this.
	Below float64
}

// Metric is one row of the results: a figure of the service (Ours), the
// figure it is compared with on the same machine in the same run (Anchor,
// nil when there is none), the same measured on the PostgreSQL peer (Peer,
// nil when it has no equivalent or was not run) and the target. A metric
// whose target sets no condition is there for comparison: it is met when
// it has no problems.
type Metric struct {
	Key    string // results.json key, e.g. append_always
	Name   string // what the table shows
	Unit   string // of Ours and Anchor, e.g. events/s
	Ours   float64
	Anchor *float64
	// Peer is the PostgreSQL peer's figure in the same unit (bench/peer.go).
	Peer   *float64
	Target Target
	// Problems make the measurement unfit to pass (errors in the load, a
	// wrong count): the target is not met, and the notes say why.
	Problems []string
}

// Ratio is ours/anchor, or nil without a (non-zero) anchor.
func (m Metric) Ratio() *float64 {
	if m.Anchor == nil || *m.Anchor == 0 {
		return nil
	}
	r := m.Ours / *m.Anchor
	return &r
}

// PeerRatio is ours/peer, or nil without a (non-zero) peer figure.
func (m Metric) PeerRatio() *float64 {
	if m.Peer == nil || *m.Peer == 0 {
		return nil
	}
	r := m.Ours / *m.Peer
	return &r
}

// none says whether the target sets no condition.
func (t Target) none() bool { return t.MinRatio == 0 && t.AtLeast == 0 && t.Below == 0 }

// Met says whether the measurement holds and reaches every condition of the
// target.
func (m Metric) Met() bool {
	if len(m.Problems) > 0 || math.IsNaN(m.Ours) {
		return false
	}
	t := m.Target
	if t.MinRatio > 0 {
		r := m.Ratio()
		if r == nil || *r < t.MinRatio {
			return false
		}
	}
	if t.AtLeast > 0 && m.Ours < t.AtLeast {
		return false
	}
	if t.Below > 0 && m.Ours >= t.Below {
		return false
	}
	return true
}

// jsonMetric is one entry of results.json.
type jsonMetric struct {
	Ours   float64  `json:"ours"`
	Anchor *float64 `json:"anchor"`
	Ratio  *float64 `json:"ratio"`
	// Peer and PeerRatio (ours/peer) are null where PostgreSQL has no
	// equivalent or was not available.
	Peer      *float64 `json:"peer"`
	PeerRatio *float64 `json:"peer_ratio"`
	Target    string   `json:"target"`
	Met       bool     `json:"met"`
}

// resultsJSON renders {"<key>": {"ours", "anchor", "ratio", "peer",
// "peer_ratio", "target", "met"}}.
func resultsJSON(metrics []Metric) ([]byte, error) {
	out := make(map[string]jsonMetric, len(metrics))
	for _, m := range metrics {
		if _, dup := out[m.Key]; dup {
			return nil, fmt.Errorf("metric %q listed twice", m.Key)
		}
		out[m.Key] = jsonMetric{Ours: round(m.Ours, 3), Anchor: roundPtr(m.Anchor, 3), Ratio: roundPtr(m.Ratio(), 3),
			Peer: roundPtr(m.Peer, 3), PeerRatio: roundPtr(m.PeerRatio(), 3), Target: m.Target.Text, Met: m.Met()}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // targets read "< 2 ms", not "\u003c 2 ms"
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Extra is a figure printed under the targets, with no target of its own.
type Extra struct {
	Name  string
	Value string
}

// Report is everything results.md holds.
type Report struct {
	Header  []string // "key: value" lines about the run
	Metrics []Metric
	Extras  []Extra
	Notes   []string // how it was measured
}

// Markdown renders the report: header, the targets table, other figures,
// problems and notes.
func (r Report) Markdown() string {
	var b strings.Builder
	b.WriteString("# make bench\n\n")
	for _, h := range r.Header {
		fmt.Fprintf(&b, "- %s\n", h)
	}
	b.WriteString("\n| metric | ours | anchor | ratio | PostgreSQL | ours/PostgreSQL | target | met |\n" +
		"|---|---:|---:|---:|---:|---:|---|:---:|\n")
	value := func(v *float64, unit string) string {
		if v == nil {
			return "—"
		}
		return formatValue(*v, unit)
	}
	times := func(v *float64) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf("%.2f×", *v)
	}
	for _, m := range r.Metrics {
		met := "✗"
		switch {
		case m.Met() && m.Target.none():
			met = "—"
		case m.Met():
			met = "✓"
		}
		target := m.Target.Text
		if target == "" {
			target = "—"
		}
		fmt.Fprintf(&b, "| %s (`%s`) | %s | %s | %s | %s | %s | %s | %s |\n", m.Name, m.Key, formatValue(m.Ours, m.Unit),
			value(m.Anchor, m.Unit), times(m.Ratio()), value(m.Peer, m.Unit), times(m.PeerRatio()), target, met)
	}
	var problems []string
	for _, m := range r.Metrics {
		for _, p := range m.Problems {
			problems = append(problems, fmt.Sprintf("`%s`: %s", m.Key, p))
		}
	}
	if len(problems) > 0 {
		b.WriteString("\nMeasurement problems (these rows count as not met):\n\n")
		for _, p := range problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	if len(r.Extras) > 0 {
		b.WriteString("\n| other figures | |\n|---|---:|\n")
		for _, e := range r.Extras {
			fmt.Fprintf(&b, "| %s | %s |\n", e.Name, e.Value)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nHow it was measured:\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// formatValue prints a figure with its unit, precise enough to compare.
func formatValue(v float64, unit string) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	default:
		return fmt.Sprintf("%.3g %s", v, unit)
	}
}

func round(v float64, decimals int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}

func roundPtr(v *float64, decimals int) *float64 {
	if v == nil {
		return nil
	}
	r := round(*v, decimals)
	return &r
}
