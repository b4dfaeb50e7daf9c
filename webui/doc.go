// Package webui serves the engagement tracker's web pages: sign-in, the
// portfolio with filters and an as-of date, one page per engagement with its
// timeline and the forms for what may happen next, and a form to record a new
// engagement.
//
// It exists because coordinators and auditors need pages, not curl: the same
// records and the same rules as the HTTP API, readable and writable from a
// browser on a laptop or a phone. Pages are rendered on the server with
// html/template and work without JavaScript; the small script in assets/
// only adds live updates (Server-Sent Events from the projection) and hides
// form fields that do not apply to the chosen kind.
//
// The package reads the projections through its own narrow Projection
// interface and writes through app.Service.Execute, the command path the API
// uses; it never calls the API over HTTP and holds no rules of its own. Which
// forms a page offers is answered by domain's Engagement.Allows; the fields of
// each form, their labels, which are required and which apply to a kind come
// from the event type's domain.Spec; validation messages are the domain's. It
// imports app, projections and domain (and sessions, whose bucket keeps the
// sign-in sessions through its SessionStore interface, tokens for the
// digest a session keeps, and openid for the types of directory sign-in,
// whose provider it reaches through its Directory interface), and must not
// import api, nor api it (package
// app/stack mounts it with api.WithUI).
package webui
