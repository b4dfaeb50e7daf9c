// Package app is the command path: the one way anything is written to the
// engagement log, shared by the HTTP API (package api) and the web pages
// (package webui), which only translate requests into a Command.
//
// Service.Execute follows load, decide, save: it answers a retried
// Idempotency-Key with the first result, reads the engagement's state and the
// sequence of its latest message from the projection, lets domain.Decide
// build the event, appends it with that sequence as the expected one
// (one at a time per engagement on this instance, retrying races lost to
// other instances as RetryPolicy says) and waits until the projection
// shows the write, so the caller reads its own write.
//
// Its dependencies are the narrow interfaces Store and Projection, defined
// here and met by eventstore.Store and projections.Projector. It knows
// nothing of transports: it must not import echo, net/http, api or webui.
// Building the running stack (store, projector, this service, API and pages)
// is package app/stack's job.
package app
