package api

import (
	"bytes"
	"testing"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
)

// TestEventResponseJSON holds the append answer, written by jsontext, to
// what c.JSON (encoding/json) writes for it.
func TestEventResponseJSON(t *testing.T) {
	for _, r := range []eventResponse{
		{ID: uuid.Must(uuid.NewV7()).String(), Type: domain.EngagementNoted, Sequence: 1, Version: 1},
		{ID: uuid.Must(uuid.NewV7()).String(), Type: domain.InitiativeRoleChanged, Sequence: 1<<64 - 1, Version: 1<<31 - 1},
		{ID: "<&> \u2028 \u2029", Type: "\"quoted\""},
		{ID: "\t\x00", Type: "\x7f"},
		{},
	} {
		want, err := encodeJSON(r, false)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := r.marshalJSON(); err != nil || !bytes.Equal(got, want) {
			t.Errorf("marshalJSON = %q (%v), encoding/json = %q", got, err, want)
		}
	}
}
