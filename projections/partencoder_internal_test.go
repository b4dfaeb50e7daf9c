package projections

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
)

// TestPartEncoderWritesWhatAFreshEncoderWould encodes parts with one
// partEncoder (the definitions of types first met in a later part
// included: an interface's concrete types, sent only once a value holds
// them) and checks each against a fresh encoder's bytes, and that each
// decodes on its own.
func TestPartEncoderWritesWhatAFreshEncoderWould(t *testing.T) {
	gob.Register(partLater{})
	parts := make([]any, 0, 5)
	for i := range 5 {
		part := make([]savedEngagement, 0, 3)
		for j := range 3 {
			var s savedEngagement
			s.Snapshot.State = domain.View{ID: fmt.Sprintf("id-%d-%d", i, j), Title: "MOU", Parties: []string{"IOM", "WHO"},
				CreatedAt: time.Unix(int64(i*10+j), 0).UTC()}
			s.Snapshot.SourceFields, s.Snapshot.SourceEvents = []string{"title"}, []string{"e"}
			s.LastType = domain.EngagementNoted
			part = append(part, s)
		}
		parts = append(parts, part)
	}
	// A section whose later parts hold a type the first does not.
	mixed := []any{partWith{V: 1}, partWith{V: 2, Any: partLater{S: "later"}}, partWith{V: 3, Any: partLater{S: "again"}}}
	for name, section := range map[string][]any{"engagements": parts, "mixed": mixed} {
		var p partEncoder
		var buf bytes.Buffer
		for i, v := range section {
			got, err := p.encode(&buf, v)
			if err != nil {
				t.Fatalf("%s part %d: %v", name, i, err)
			}
			var fresh bytes.Buffer
			if err := gob.NewEncoder(&fresh).Encode(v); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, fresh.Bytes()) {
				t.Errorf("%s part %d: %d bytes, a fresh encoder's %d", name, i, len(got), fresh.Len())
			}
			switch v := v.(type) {
			case []savedEngagement:
				var back []savedEngagement
				if err := decodePart(got, &back); err != nil || len(back) != 3 || back[2].Snapshot.State.ID != fmt.Sprintf("id-%d-2", i) {
					t.Errorf("%s part %d decodes to %d engagements (%v)", name, i, len(back), err)
				}
			case partWith:
				var back partWith
				if err := decodePart(got, &back); err != nil || back.V != v.V {
					t.Errorf("%s part %d decodes to %+v (%v)", name, i, back, err)
				}
			}
		}
	}
}

// TestEngagementPartsShareOneEncoder: the engagements' parts, most of a
// checkpoint, hold no interface, so one encoder writes them all.
func TestEngagementPartsShareOneEncoder(t *testing.T) {
	if holdsInterface(reflect.TypeFor[[]savedEngagement](), map[reflect.Type]bool{}) {
		t.Fatal("savedEngagement holds an interface: every part would get a fresh encoder")
	}
	if !holdsInterface(reflect.TypeFor[partWith](), map[reflect.Type]bool{}) {
		t.Fatal("partWith holds an interface")
	}
}

type partWith struct {
	V   int
	Any any
}

type partLater struct{ S string }
