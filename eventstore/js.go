package eventstore

import "github.com/nats-io/nats.go/jetstream"

// JetStream is the store's JetStream context, for adapters that keep
// buckets and streams of their own on the store's connection (webhooks'
// subscriptions and dead letters, the token store). The engagement stream
// itself is read through Read and Durable only.
func (s *Store) JetStream() jetstream.JetStream { return s.js }
