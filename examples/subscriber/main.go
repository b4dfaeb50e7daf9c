// Command subscriber is an example subscriber: it follows agreement
// renewals on the engagement stream through a durable JetStream consumer,
// prints each one and acknowledges it. Being durable, it resumes where it
// stopped after a restart.
//
//	go run ./examples/subscriber --url nats://127.0.0.1:4222 --token "$SUBSCRIBER_TOKEN"
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

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
	token := flag.String("token", os.Getenv("SUBSCRIBER_TOKEN"), "subscriber token (serve --nats-subscriber-token)")
	durable := flag.String("durable", "mou-renewals", "durable consumer name")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nc, err := nats.Connect(*url, nats.Token(*token), nats.Name("example-subscriber"))
	if err != nil {
		log.Fatalf("connect: %v", err)
	}
	defer nc.Drain()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "ENGAGEMENTS", jetstream.ConsumerConfig{
		Durable:       *durable,
		FilterSubject: "engagements.agreement.*.renewed",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
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
