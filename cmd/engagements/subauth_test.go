package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/sessions"
	"github.com/iom-who/engagements/tokens"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestSubscriberTokensOnNATS tries, as a hostile subscriber holding an API
// token of role subscriber, everything issue 14 item 3 says it must not do,
// with nats.go as a stranger would, against a real serve.
func TestSubscriberTokensOnNATS(t *testing.T) {
	dir := t.TempDir()
	m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: dir, Sync: "always", Replicas: 1,
		NATSListen: "127.0.0.1:-1", NATSAdminToken: "nats-admin-token-0123456789"}}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	ctx := context.Background()
	alice, _, err := m.Tokens.Create(ctx, "alice", domain.RoleSubscriber)
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := m.Tokens.Create(ctx, "bob", domain.RoleSubscriber)
	if err != nil {
		t.Fatal(err)
	}
	coordinator, _, err := m.Tokens.Create(ctx, "carol", domain.RoleCoordinator)
	if err != nil {
		t.Fatal(err)
	}
	connect := func(token, name string) (*nats.Conn, jetstream.JetStream, chan error) {
		errs := make(chan error, 64)
		nc, err := nats.Connect(m.Store.ClientURL(), nats.Token(token),
			nats.CustomInboxPrefix(eventstore.SubscriberInboxPrefix(name)),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				select {
				case errs <- err:
				default:
				}
			}))
		if err != nil {
			t.Fatalf("%s connects: %v", name, err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js, errs
	}
	if nc, err := nats.Connect(m.Store.ClientURL(), nats.Token(coordinator)); err == nil {
		nc.Close()
		t.Error("a coordinator's API token connected to NATS")
	}

	// Bob's own durable consumer, and the service's (the projector's is
	// unnamed to strangers; webhooks' are webhook-<id>).
	_, bjs, _ := connect(bob, "bob")
	bobCons := eventstore.SubscriberConsumer("bob", 1)
	if _, err := bjs.CreateOrUpdateConsumer(ctx, eventstore.StreamName, jetstream.ConsumerConfig{Durable: bobCons,
		AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatalf("bob creates his own durable consumer: %v", err)
	}
	admin, err := nats.Connect(m.Store.ClientURL(), nats.Token("nats-admin-token-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ajs, _ := jetstream.New(admin)
	astream, err := ajs.Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := astream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "webhook-x",
		AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	// The admin listens on the service's inbox: tokens created meanwhile are
	// seen there (the test can fail), never on alice's.
	serviceInbox, err := admin.SubscribeSync(eventstore.ServiceInboxPrefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	_ = admin.Flush()

	anc, ajsAlice, aliceErrs := connect(alice, "alice")
	var spies []*nats.Subscription
	for _, subj := range []string{"_INBOX.>", ">", eventstore.ServiceInboxPrefix + ".>", eventstore.SubscriberInboxPrefix("bob") + ".>", "$KV.>", "$JS.>"} {
		sub, err := anc.SubscribeSync(subj)
		if err != nil {
			t.Fatal(err)
		}
		spies = append(spies, sub)
	}
	_ = anc.Flush()
	if _, _, err := m.Tokens.Create(ctx, "dave", domain.RoleSubscriber); err != nil {
		t.Fatal(err)
	}
	if _, err := serviceInbox.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("the admin saw nothing on the service's inbox while a token was created: %v", err)
	}
	for i, sub := range spies {
		if msg, err := sub.NextMsg(200 * time.Millisecond); err == nil {
			t.Errorf("alice's subscription %d received %s: %.80q", i, msg.Subject, msg.Data)
		}
	}
	select {
	case err := <-aliceErrs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Errorf("alice's refused subscription: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the server did not refuse alice's subscriptions")
	}

	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	stream, err := ajsAlice.Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatalf("alice reads the stream's info: %v", err)
	}
	for _, other := range []string{"webhook-x", bobCons} {
		if _, err := stream.Consumer(short(), other); err == nil {
			t.Errorf("alice read %s", other)
		}
		if _, err := stream.CreateOrUpdateConsumer(short(), jetstream.ConsumerConfig{Durable: other, FilterSubject: "engagements.x.>"}); err == nil {
			t.Errorf("alice updated %s", other)
		}
		if _, err := stream.PushConsumer(short(), other); err == nil {
			t.Errorf("alice reached %s as a push consumer", other)
		}
		if _, err := admin.Request("$JS.API.CONSUMER.MSG.NEXT."+eventstore.StreamName+"."+other, []byte(`{"batch":1}`), 0); err != nil {
			_ = err // the admin may; alice below may not
		}
		if err := anc.Publish("$JS.API.CONSUMER.MSG.NEXT."+eventstore.StreamName+"."+other, []byte(`{"batch":1}`)); err == nil {
			select {
			case <-aliceErrs:
			case <-time.After(5 * time.Second):
				t.Errorf("alice pulled from %s unrefused", other)
			}
		}
		if err := stream.DeleteConsumer(short(), other); err == nil {
			t.Errorf("alice deleted %s", other)
		}
	}
	names := stream.ConsumerNames(short())
	for range names.Name() {
		t.Error("alice listed consumers")
	}
	for _, bucket := range []string{tokens.Bucket, "ENGAGEMENTS_WEBHOOKS", "ENGAGEMENTS_WEBHOOK_PROGRESS", calendars.Bucket, sessions.Bucket, sessions.AttemptsBucket} {
		if _, err := ajsAlice.KeyValue(short(), bucket); err == nil {
			t.Errorf("alice opened KV bucket %s", bucket)
		}
	}
	for _, c := range []string{"webhook-x", bobCons} {
		if _, err := astream.Consumer(ctx, c); err != nil {
			t.Errorf("%s is gone after alice's attempts: %v", c, err)
		}
	}

	// Her own consumers: up to the limit, pull ones, and no push consumer
	// delivering outside her inbox survives.
	for n := 1; n <= eventstore.MaxSubscriberConsumers; n++ {
		if _, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: eventstore.SubscriberConsumer("alice", n),
			AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatalf("alice's consumer %d: %v", n, err)
		}
	}
	if _, err := stream.CreateOrUpdateConsumer(short(), jetstream.ConsumerConfig{Durable: eventstore.SubscriberConsumer("alice", 21)}); err == nil {
		t.Error("alice made a 21st consumer")
	}
	if _, err := stream.CreateOrUpdateConsumer(short(), jetstream.ConsumerConfig{Durable: "alice-extra"}); err == nil {
		t.Error("alice made a consumer not named after her")
	}
	own := eventstore.SubscriberConsumer("alice", 1)
	cons, err := stream.Consumer(ctx, own)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatalf("alice pulls from her own consumer: %v", err)
	}
	for range batch.Messages() { // the stream is empty: the pull ends after its wait
	}
	if err := batch.Error(); err != nil {
		t.Errorf("alice's pull: %v", err)
	}
	if err := stream.DeleteConsumer(ctx, eventstore.SubscriberConsumer("alice", 20)); err != nil {
		t.Errorf("alice deletes her own consumer: %v", err)
	}
	push := eventstore.SubscriberConsumer("alice", 20)
	for _, deliver := range []string{eventstore.ServiceInboxPrefix + ".steal", "$KV.ENGAGEMENTS_TOKENS.x", eventstore.SubscriberInboxPrefix("bob") + ".x"} {
		_, _ = stream.CreateOrUpdatePushConsumer(short(), jetstream.ConsumerConfig{Durable: push, DeliverSubject: deliver})
		waitUntil(t, 10*time.Second, "the push consumer to "+deliver+" is deleted", func() bool {
			_, err := astream.Consumer(ctx, push)
			return err != nil
		})
	}
	mine := eventstore.SubscriberConsumer("alice", 19)
	if err := stream.DeleteConsumer(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CreateOrUpdatePushConsumer(ctx, jetstream.ConsumerConfig{Durable: mine,
		DeliverSubject: eventstore.SubscriberInboxPrefix("alice") + ".mine"}); err != nil {
		t.Fatalf("alice's push consumer to her own inbox: %v", err)
	}

	// Revocation closes her connection.
	closed := make(chan struct{})
	anc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	anc.SetReconnectHandler(func(*nats.Conn) {})
	if err := m.Tokens.Revoke(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "alice's connection is closed or refused", func() bool {
		select {
		case <-closed:
			return true
		default:
		}
		return !anc.IsConnected()
	})
	if nc, err := nats.Connect(m.Store.ClientURL(), nats.Token(alice)); err == nil {
		nc.Close()
		t.Error("a revoked token connected")
	}
	if _, err := astream.PushConsumer(ctx, mine); err != nil {
		t.Errorf("alice's push consumer to her own inbox was deleted: %v", err)
	}
}
