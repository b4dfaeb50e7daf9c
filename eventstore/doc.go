// Package eventstore keeps the engagement events on a NATS JetStream stream.
//
// It starts an embedded nats-server (or connects to an external cluster),
// creates the ENGAGEMENTS stream, appends events as CloudEvents 1.0 documents
// with per-engagement optimistic concurrency, and reads them back: one by
// sequence (Event), in order through the one reader (Read, up to the end or
// live), or through a durable consumer that hands out one message at a time
// (webhooks). It is the NATS boundary: the stream's name, its subjects, how
// its messages decode and which NATS errors are outages (Unavailable) are
// known here only. It imports domain and nothing else of ours.
package eventstore
