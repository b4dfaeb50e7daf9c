// Package api serves the engagement tracker's HTTP API with echo: request
// decoding and validation, the translation of a write into an app.Command
// for the command path (package app), the reads, export, verification and
// event stream, and problem+json errors. It is the one place that maps
// errors to HTTP statuses.
//
// It imports app, domain and projections, and webhooks for the subscription
// types only; what it reads (Projection, Stream), the token store and the
// webhook manager are interfaces here, satisfied by projections, eventstore
// and webhooks and wired in app/stack. It must not import webui, which it
// mounts as an http.Handler (WithUI).
package api
