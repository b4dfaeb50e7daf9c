// Command subscriber is an example subscriber: it follows the renewals of
// one agreement (--engagement, e.g. the MOU's id), or of every agreement
// without it, on the engagement stream through a durable JetStream
// consumer, prints each one and acknowledges it. Being durable, it resumes
// where it stopped after a restart. With --since it starts at the first
// renewal the stream stored at or after a time (JetStream's
// DeliverByStartTime) instead of the first one.
//
//	go run ./examples/subscriber --url nats://127.0.0.1:4222 --token "$SUBSCRIBER_TOKEN" --as crm --engagement "$MOU"
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// cloudEvent is the part of the stored CloudEvents document this example reads.
type cloudEvent struct {
	ID      string  `json:"id"`
	Type    string  `json:"type"`
	Subject string  `json:"subject"`
	Time    string  `json:"time"`
	Actor   string  `json:"actor"`
	Data    renewal `json:"data"`
}

type renewal struct {
	RenewedOn string `json:"renewed_on"`
	ExpiresOn string `json:"expires_on"`
}

func main() {
	url := flag.String("url", "nats://127.0.0.1:4222", "NATS URL (serve --nats-listen)")
	token := flag.String("token", os.Getenv("SUBSCRIBER_TOKEN"), "an API token of role subscriber (POST /v1/tokens), or serve's --nats-subscriber-token")
	as := flag.String("as", "shared", "the token's name (its NATS identity: inbox _INBOX_sub_<as>, consumers sub-<as>-1..20); shared for --nats-subscriber-token")
	slot := flag.Int("consumer", 1, "which of the identity's consumers to use, 1 to 20 (sub-<as>-<n>)")
	engagement := flag.String("engagement", "", "the agreement whose renewals to print (its id); empty: every agreement's")
	since := flag.String("since", "", "start at the first renewal stored at or after this time (RFC 3339 or YYYY-MM-DD; for a new durable: JetStream cannot move an existing one); empty: the first")
	flag.Parse()

	// One subject per agreement: engagements.agreement.<id>.renewed.
	id := "*"
	if *engagement != "" {
		if strings.ContainsAny(*engagement, ".*> \t") {
			log.Fatalf("--engagement %q is not an engagement id", *engagement)
		}
		id = *engagement
	}
	if strings.ContainsAny(*as, ".*> \t") || *slot < 1 || *slot > 20 {
		log.Fatalf("--as %q --consumer %d: want a token name and 1 to 20", *as, *slot)
	}
	// The server lets each subscriber use only consumers named after it.
	name := fmt.Sprintf("sub-%s-%d", *as, *slot)
	cfg := jetstream.ConsumerConfig{
		Durable:       name,
		FilterSubject: "engagements.agreement." + id + ".renewed",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, *since); err != nil {
				log.Fatalf("--since %q: want an RFC 3339 time or a date YYYY-MM-DD", *since)
			}
		}
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nc, err := nats.Connect(*url, nats.Token(*token), nats.Name("example-subscriber"),
		// Replies come only on the identity's own inbox.
		nats.CustomInboxPrefix("_INBOX_sub_"+*as))
	if err != nil {
		log.Fatalf("connect: %v", err)
	}
	defer nc.Drain()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "ENGAGEMENTS", cfg)
	if err != nil {
		log.Fatalf("consumer: %v", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		var ev cloudEvent
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			log.Printf("skipping a message that is not a CloudEvent: %v", err)
			_ = msg.Term()
			return
		}
		fmt.Printf("%s renewed on %s (expires %q), recorded by %s, event %s\n",
			ev.Subject, ev.Data.RenewedOn, ev.Data.ExpiresOn, ev.Actor, ev.ID)
		if err := msg.Ack(); err != nil {
			log.Printf("ack: %v", err)
		}
	})
	if err != nil {
		log.Fatalf("consume: %v", err)
	}
	defer cc.Stop()
	<-ctx.Done()
}
