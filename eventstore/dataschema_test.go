package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// TestDataSchemaForms: new events carry an absolute dataschema (under the
// public URL, or a URN without one), and every form a release has stored
// decodes — the relative /schemas/<type>/v<N> of earlier releases included,
// whose bytes the hash chain keeps.
func TestDataSchemaForms(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, eventstore.Config{DataDir: t.TempDir(), PublicURL: "https://tracker.example.org"})
	ev := newEvent(newID())
	seq := mustAppend(t, store, ev, 0)
	stored, err := store.Event(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	for m, err := range store.Read(ctx, seq-1, domain.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		raw = m.Payload
		break
	}
	if want := `"dataschema":"https://tracker.example.org/schemas/engagement.recorded/v1"`; !bytes.Contains(raw, []byte(want)) {
		t.Errorf("stored %s, want %s", raw, want)
	}

	urn, err := eventstore.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	const urnForm = `"dataschema":"urn:engagements:schema:engagement.recorded:v1"`
	if !bytes.Contains(urn, []byte(urnForm)) {
		t.Fatalf("Encode without a public URL wrote %s, want %s", urn, urnForm)
	}
	subject, err := eventstore.Subject(ev.Kind, ev.EngagementID, ev.Type)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dataschema string
		ok               bool
	}{
		{"the URN", urnForm, true},
		{"under the public URL", `"dataschema":"https://tracker.example.org/schemas/engagement.recorded/v1"`, true},
		{"under another public URL", `"dataschema":"http://127.0.0.1:8080/tracker/schemas/engagement.recorded/v1"`, true},
		{"relative, as earlier releases stored it", `"dataschema":"/schemas/engagement.recorded/v1"`, true},
		{"none, as the first releases stored it", ``, true},
		{"another type's schema", `"dataschema":"urn:engagements:schema:agreement.renewed:v1"`, false},
		{"a version the type never had", `"dataschema":"https://tracker.example.org/schemas/engagement.recorded/v2"`, false},
		{"a foreign URN", `"dataschema":"urn:other:schema:engagement.recorded:v1"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := []byte(strings.Replace(string(urn), urnForm, tt.dataschema, 1))
			if tt.dataschema == "" {
				payload = []byte(strings.Replace(string(urn), urnForm+",", "", 1))
			}
			got, err := eventstore.Decode(subject, payload, 7)
			if !tt.ok {
				if !errors.Is(err, eventstore.ErrUndecodable) {
					t.Fatalf("Decode(%s) = %v, want ErrUndecodable", payload, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%s): %v", payload, err)
			}
			if got.ID != stored.ID || !bytes.Equal(got.Data, stored.Data) {
				t.Errorf("decoded %+v, want %+v", got, stored)
			}
		})
	}

	if _, err := eventstore.Open(ctx, eventstore.Config{DataDir: t.TempDir(), PublicURL: "tracker.example.org"}); err == nil {
		t.Error("Open accepted a public URL that is not absolute")
	}
}
