package eventstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestUpcastsAStoredV1Correction stores the v1 fixture of
// engagement.corrected (corrected fields beside corrects and reason), whose
// shape changed in v2 (fields nested under "fields"), and reads it back in
// the current shape; folding it corrects the title.
func TestUpcastsAStoredV1Correction(t *testing.T) {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const engagement, recordedID = "0193b0c0-0000-7000-8000-000000000000", "0193b0c0-0000-7000-8000-000000000001"
	rec := domain.Event{ID: recordedID, Type: domain.EngagementRecorded, EngagementID: engagement, Kind: domain.KindAgreement,
		Version: 1, OccurredAt: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), RecordedAt: time.Now(), Actor: "test",
		Data: json.RawMessage(`{"kind":"agreement","title":"IOM-WHO Memorandom","parties":["IOM","WHO"]}`)}
	seq1, _, err := store.Append(ctx, rec, 0)
	if err != nil {
		t.Fatal(err)
	}
	first, err := store.Event(ctx, seq1)
	if err != nil {
		t.Fatal(err)
	}

	fixture, err := os.ReadFile("testdata/corrected-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	fixture = bytes.TrimSpace(fixture)
	nc, err := nats.Connect(store.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subject := "engagements.agreement." + engagement + ".corrected"
	msg := nats.NewMsg(eventstore.IntakeSubject(subject))
	msg.Data = fixture
	msg.Header.Set(eventstore.HeaderPrevHash, first.Hash)
	msg.Header.Set(eventstore.HeaderHash, eventstore.ChainHash(first.Hash, subject, fixture))
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}

	ev, err := store.Event(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("reading the v1 fixture: %v", err)
	}
	var data struct {
		Corrects string            `json:"corrects"`
		Reason   string            `json:"reason"`
		Fields   map[string]string `json:"fields"`
		Title    *string           `json:"title"`
	}
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Corrects != recordedID || data.Reason != "typo in the title" ||
		data.Fields["title"] != "IOM–WHO Memorandum of Understanding" || data.Title != nil {
		t.Errorf("upcast data = %s, want the v2 shape with the title under fields", ev.Data)
	}

	var e domain.Engagement
	for _, x := range []domain.Event{first, ev} {
		if err := e.Apply(x); err != nil {
			t.Fatalf("fold %s: %v", x.Type, err)
		}
	}
	if e.Title() != "IOM–WHO Memorandum of Understanding" || e.Version() != 2 {
		t.Errorf("after the v1 correction: title %q version %d", e.Title(), e.Version())
	}

	// New events are stored with the current schema.
	stream, err := js.Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(ctx, "engagements.agreement."+engagement+".recorded")
	if err != nil {
		t.Fatal(err)
	}
	var ce map[string]any
	if err := json.Unmarshal(raw.Data, &ce); err != nil {
		t.Fatal(err)
	}
	if ce["dataschema"] != "urn:engagements:schema:engagement.recorded:v1" {
		t.Errorf("dataschema = %v", ce["dataschema"])
	}
}
