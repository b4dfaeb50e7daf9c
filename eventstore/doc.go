// Package eventstore keeps the engagement events on a NATS JetStream stream.
//
// It starts an embedded nats-server (or connects to an external cluster),
// creates the ENGAGEMENTS stream, appends events as CloudEvents 1.0 documents
// with per-engagement optimistic concurrency, and reads them back by sequence
// or as a live subscription. It imports domain and nothing else of ours.
package eventstore
