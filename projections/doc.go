// Package projections folds engagement events into read models: the current
// state of every engagement with indexes for listing, each engagement's
// history, and the stream sequence each engagement has reached, which the
// write path uses as JetStream's expected sequence.
//
// It imports domain only; the event source is an interface that the
// eventstore satisfies, wired together in cmd/engagements.
package projections
