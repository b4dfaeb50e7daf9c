package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// TestVerifyAcceptsEveryDataSchemaForm: an engagement whose chain holds an
// event an earlier release stored (relative dataschema) between events
// stored under a public URL verifies, and each of them reads back.
func TestVerifyAcceptsEveryDataSchemaForm(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, eventstore.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1",
		PublicURL: "https://tracker.example.org"})
	id := newID()
	first := newEvent(id)
	seq1 := mustAppend(t, store, first, 0)
	stored1, err := store.Event(ctx, seq1)
	if err != nil {
		t.Fatal(err)
	}

	// What an earlier release stored: the relative form, bytes and hash as they were.
	noted := func(version int, prev string) domain.Event {
		ev := newEvent(id)
		ev.ID, ev.Type, ev.Version, ev.PrevHash = newID(), domain.EngagementNoted, version, prev
		ev.Data = []byte(`{"note":"as an earlier release stored it"}`)
		return ev
	}
	old := noted(2, stored1.Hash)
	payload, err := eventstore.Encode(old)
	if err != nil {
		t.Fatal(err)
	}
	payload = bytes.Replace(payload, []byte(`"urn:engagements:schema:engagement.noted:v1"`), []byte(`"/schemas/engagement.noted/v1"`), 1)
	if !bytes.Contains(payload, []byte(`"dataschema":"/schemas/engagement.noted/v1"`)) {
		t.Fatalf("no relative dataschema in %s", payload)
	}
	subject, err := eventstore.Subject(old.Kind, old.EngagementID, old.Type)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(store.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(eventstore.IntakeSubject(subject)) // stored under subject
	msg.Data = payload
	msg.Header.Set(eventstore.HeaderPrevHash, stored1.Hash)
	msg.Header.Set(eventstore.HeaderHash, eventstore.ChainHash(stored1.Hash, subject, payload))
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	stored2, err := store.Event(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("reading the relative form: %v", err)
	}
	seq3 := mustAppend(t, store, noted(3, stored2.Hash), ack.Sequence)
	if _, err := store.Event(ctx, seq3); err != nil {
		t.Fatal(err)
	}

	report, err := store.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !report.OK || report.Events != 3 {
		t.Errorf("verify: ok %v, %d events, problems %v", report.OK, report.Events, report.Problems)
	}
}
