// Package webhooks delivers engagement events to subscribers' HTTP endpoints.
//
// Subscribers register a URL, the event types they want and a shared secret;
// the registrations live in a JetStream KV bucket shared by every instance.
// Each subscription reads the ENGAGEMENTS stream through its own durable
// consumer (one message in flight, so events arrive in stream order) and
// POSTs each stored CloudEvent, byte for byte, signed as Standard Webhooks
// prescribes. Failed deliveries are retried with backoff, then recorded as
// dead letters, and delivery goes on. Delivery is at least once: receivers
// dedupe by the webhook-id header (the event id).
//
// It imports domain and nats.go's jetstream only (not eventstore, api or
// projections): the event store is the Source interface here, satisfied by
// eventstore.Store and wired in cmd/engagements.
package webhooks
