package eventstore

import (
	"fmt"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream is the store's JetStream context, for adapters that keep their
// own buckets, streams and durable consumers on the store's connection
// (webhooks).
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// DecodeMsg decodes a message that a consumer of one's own read from the
// stream and checks its hash, as Walk and Follow do: a message that fails
// must not be passed on.
func (s *Store) DecodeMsg(msg jetstream.Msg) (domain.Event, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return domain.Event{}, fmt.Errorf("message metadata: %w", err)
	}
	return decodeMsg(msg.Subject(), msg.Headers(), msg.Data(), meta.Sequence.Stream)
}
