package api

import "testing"

// noneMatch runs on every GET of an engagement: it allocates nothing, with
// or without a match.
func TestNoneMatchAllocatesNothing(t *testing.T) {
	for _, lines := range [][]string{nil, {`"3"`}, {`W/"1", W/"2", "3"`}, {`"1", "2"`, `W/"4"`}, {`*`}, {`garbage`}} {
		if n := testing.AllocsPerRun(100, func() { noneMatch(lines, 3) }); n != 0 {
			t.Errorf("noneMatch(%q) allocates %v times", lines, n)
		}
	}
}
