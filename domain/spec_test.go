package domain

import (
	"fmt"
	"slices"
	"testing"
)

// TestSpecsAreTheContractsTable: each spec's From and To are the contract's
// "allowed when" and "leads to" columns (allowedIn, statusAfter).
func TestSpecsAreTheContractsTable(t *testing.T) {
	for _, s := range Specs() {
		if want, ok := allowedIn[s.Type]; ok && s.From != nil && !slices.Equal(s.From, want) {
			t.Errorf("%s: From %v, the contract allows it when %v", s.Type, s.From, want)
		}
		if want := statusAfter[s.Type]; s.To != "" && s.To != want {
			t.Errorf("%s: To %s, the contract says %q", s.Type, s.To, want)
		}
	}
}

// TestAllows: what the state alone allows (the web UI's offer of forms) is
// each cell of the transition matrix.
func TestAllows(t *testing.T) {
	for _, f := range fixtures {
		for _, typ := range EventTypes {
			if typ == EngagementRecorded || !typ.AppliesTo(f.kind) {
				continue
			}
			t.Run(fmt.Sprintf("%s on %s", typ, f.name), func(t *testing.T) {
				e, _ := build(t, f.kind, f.steps...)
				err := e.Allows(typ, occurred)
				// The fixtures have no action item or focal point to close.
				needsItem := typ == EngagementActionCompleted || typ == EngagementActionCancelled || typ == EngagementFocalPointReleased
				if ok := allowed(typ, f.status) && !needsItem; ok != (err == nil) {
					t.Errorf("Allows = %v, the contract says allowed: %v", err, ok)
				}
				if err != nil {
					denied(t, err)
				}
			})
		}
	}
	for _, k := range Kinds {
		e, _ := record(t, k)
		for _, typ := range EventTypes {
			if !typ.AppliesTo(k) || typ == EngagementRecorded {
				if err := e.Allows(typ, occurred); err == nil {
					t.Errorf("%s on a recorded %s: allowed", typ, k)
				}
			}
		}
	}
	if err := (&Engagement{}).Allows(EngagementRecorded, occurred); err != nil {
		t.Errorf("recording a new engagement: %v", err)
	}
}
