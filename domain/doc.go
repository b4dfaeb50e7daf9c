// Package domain holds the engagement tracker's rules: engagement kinds, event
// types and their data, validation, and the state machine of each kind.
//
// Each event type has one Spec (spec.go): the statuses it may happen in, the
// status it leads to, its data fields with their rules, labels and inputs,
// and its fold. Decide says whether an event may happen to an engagement in
// its current state; Apply folds an event into that state; both, and the web
// UI's forms and the OpenAPI test, read the specs. Status is always derived
// by folding events, never stored on its own.
//
// The package is pure Go: it must not import NATS, echo or any other package
// of this module.
package domain
