package api

import (
	"bytes"
	"testing"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
)

// TestEventResponseJSON holds the hand-written append answer to what c.JSON
// wrote for it.
func TestEventResponseJSON(t *testing.T) {
	for _, r := range []eventResponse{
		{ID: uuid.Must(uuid.NewV7()).String(), Type: domain.EngagementNoted, Sequence: 1, Version: 1},
		{ID: uuid.Must(uuid.NewV7()).String(), Type: domain.InitiativeRoleChanged, Sequence: 1<<64 - 1, Version: 1<<31 - 1},
		{},
	} {
		want, err := encodeJSON(r, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.appendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("appendJSON = %q, encoding/json = %q", got, want)
		}
	}
}
