package calendars_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// BenchmarkWriteMaxItems renders a feed at its cap, MaxItems events.
func BenchmarkWriteMaxItems(b *testing.B) {
	items := make([]projections.DatedItem, calendars.MaxItems)
	for i := range items {
		items[i] = projections.DatedItem{Deadline: domain.Deadline{Kind: domain.DeadlineExpiry,
			On: fmt.Sprintf("2030-%02d-%02d", i%12+1, i%28+1)}, EngagementID: fmt.Sprintf("01a23c40-87f3-7446-bfb2-%012d", i),
			Title: fmt.Sprint("Memorandum of Understanding IOM–WHO number ", i), Kind: domain.KindAgreement,
			Parties: []string{"IOM", "WHO"}}
	}
	now := time.Now()
	for b.Loop() {
		if err := calendars.Write(io.Discard, calendars.Feed{Name: "All"}, items, "https://tracker.example.org", now); err != nil {
			b.Fatal(err)
		}
	}
}
