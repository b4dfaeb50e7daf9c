package eventstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/tokens"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	subscriberToken = "subscriber-token-0123456789"
	adminToken      = "admin-token-0123456789abcdef"
)

// TestSubscriberTokenReadsButCannotWrite exposes the embedded server with
// tokens and tries, as a subscriber would, everything it may and may not do.
func TestSubscriberTokenReadsButCannotWrite(t *testing.T) {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1",
		SubscriberToken: subscriberToken, AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	id := uuid.Must(uuid.NewV7()).String()
	rec := domain.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: domain.EngagementRecorded, EngagementID: id,
		Kind: domain.KindAgreement, Version: 1, OccurredAt: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC),
		RecordedAt: time.Now(), Actor: "test", Data: json.RawMessage(`{"kind":"agreement","title":"MOU","parties":["IOM"]}`)}
	if _, _, err := store.Append(ctx, rec, 0); err != nil {
		t.Fatalf("the service's own connection cannot append: %v", err)
	}

	if nc, err := nats.Connect(store.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("connected without a token")
	}
	if nc, err := nats.Connect(store.ClientURL(), nats.Token("wrong-token-0123456789")); err == nil {
		nc.Close()
		t.Fatal("connected with a wrong token")
	}

	nc, err := nats.Connect(store.ClientURL(), nats.Token(subscriberToken),
		nats.CustomInboxPrefix(eventstore.SubscriberInboxPrefix(eventstore.SharedSubscriber)))
	if err != nil {
		t.Fatalf("subscriber connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatalf("subscriber reads stream info: %v", err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: eventstore.SubscriberConsumer(eventstore.SharedSubscriber, 1),
		FilterSubject: "engagements.agreement.*.*", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("subscriber creates a durable pull consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for msg := range batch.Messages() {
		got++
		if err := msg.Ack(); err != nil {
			t.Errorf("ack: %v", err)
		}
	}
	if got != 1 {
		t.Fatalf("fetched %d messages, want 1", got)
	}
	// A core subscription sees new events too.
	sub, err := nc.SubscribeSync("engagements.>")
	if err != nil {
		t.Fatal(err)
	}
	// The intake subjects are the service's: the server refuses this
	// subscription (asynchronously), so nothing arrives on it.
	intake, err := nc.SubscribeSync("engagements-intake.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	first, _ := store.Event(ctx, 1)
	noted := rec
	noted.ID, noted.Type, noted.Version, noted.PrevHash = uuid.Must(uuid.NewV7()).String(), domain.EngagementNoted, 2, first.Hash
	noted.Data = json.RawMessage(`{"note":"n"}`)
	if _, _, err := store.Append(ctx, noted, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Errorf("core subscription got nothing: %v", err)
	}
	if msg, err := intake.NextMsg(100 * time.Millisecond); err == nil {
		t.Errorf("subscriber received %s on the intake subjects", msg.Subject)
	}

	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	forbidden := []struct {
		name string
		try  func() error
	}{
		{"publish an event", func() error {
			_, err := js.Publish(short(), "engagements.agreement."+id+".renewed", []byte(`{}`))
			return err
		}},
		{"publish an event on the intake subject", func() error {
			_, err := js.Publish(short(), eventstore.IntakeSubject("engagements.agreement."+id+".renewed"), []byte(`{}`))
			return err
		}},
		{"purge the stream", func() error { return stream.Purge(short()) }},
		{"delete a message", func() error { return stream.DeleteMsg(short(), 1) }},
		{"update the stream", func() error {
			_, err := js.UpdateStream(short(), jetstream.StreamConfig{Name: eventstore.StreamName, Subjects: []string{"engagements.>"}})
			return err
		}},
		{"delete the stream", func() error { return js.DeleteStream(short(), eventstore.StreamName) }},
		{"read the token bucket", func() error {
			_, err := js.KeyValue(short(), tokens.Bucket)
			return err
		}},
	}
	for _, f := range forbidden {
		if err := f.try(); err == nil {
			t.Errorf("subscriber could %s", f.name)
		}
	}
	if err := stream.DeleteConsumer(ctx, eventstore.SubscriberConsumer(eventstore.SharedSubscriber, 1)); err != nil {
		t.Errorf("subscriber deletes its consumer: %v", err)
	}
	last, err := store.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last != 2 {
		t.Errorf("stream last sequence %d, want 2: a subscriber changed the stream", last)
	}

	admin, err := nats.Connect(store.ClientURL(), nats.Token(adminToken))
	if err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	defer admin.Close()
	ajs, _ := jetstream.New(admin)
	if _, err := ajs.KeyValue(ctx, tokens.Bucket); err == nil {
		t.Log("admin reads the token bucket (it may not exist yet)")
	}
	if _, err := ajs.Stream(ctx, eventstore.StreamName); err != nil {
		t.Errorf("admin reads the stream: %v", err)
	}
}
