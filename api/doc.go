// Package api serves the engagement tracker's HTTP API with echo: request
// decoding and validation, the command path that turns a request into an
// appended event (load state, let domain decide, append with the expected
// sequence, wait for the projection), and problem+json errors. It is the one
// place that maps errors to HTTP statuses.
//
// It imports domain and projections, and webhooks for the subscription types
// only; the event store, the token store and the webhook manager are
// interfaces here, satisfied by eventstore and webhooks and wired in
// cmd/engagements.
package api
