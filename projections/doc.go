// Package projections folds engagement events into read models and keeps
// them current: a Projector runs the consumer, records how far it has
// applied the stream (Applied, WaitFor) and saves and loads the checkpoint;
// each read model is a small type of its own that folds one event at a time
// and saves and restores its own section of the checkpoint:
//
//   - current: every engagement's current state, the indexes List uses, and
//     each engagement's last change, which the portfolio shows;
//   - sequences: the stream sequences of each engagement's messages (its
//     history, and the latest, which the write path names as JetStream's
//     expected sequence), the refused messages and the corrections;
//   - keys: the idempotency keys of the last IdempotencyMemory;
//   - recent: the last changes, for the web UI's live feed.
//
// It imports domain only; the event source is an interface that the
// eventstore satisfies, wired together in cmd/engagements.
package projections
