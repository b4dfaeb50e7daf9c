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
// Each subscription's progress (the last sequence settled) and delivery
// health are kept by the worker delivering it and written to their own KV
// bucket (at most every 250 ms), so a consumer that disappears (deleted by
// someone with access to the stream, or lost with a node) is made again to
// start right after it.
// Subscriptions can be paused (their state is in the subscription's entry,
// so it holds on every instance and across restarts) and resumed, and a
// recorded failure can be sent again.
//
// Of this module it imports domain and eventstore, whose durable consumers
// read the stream and whose rule says which NATS errors are outages (the
// stream, its subjects and its decoding are eventstore's alone); not api or
// projections. The event store is the Source interface here, satisfied by
// eventstore.Store; cmd/engagements wires them together.
package webhooks
