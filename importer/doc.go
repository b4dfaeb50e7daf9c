// Package importer brings an office's spreadsheet of past engagements into
// the tracker: it reads the template (examples/import: an .xlsx workbook
// with the sheets "engagements" and "events", or one CSV file with a
// "sheet" column), checks every row with the domain's own rules (the ones
// the API applies, through domain.Engagement.Decide), reports each problem
// by sheet, row and column, and records the rows through POST /v1/batches
// with idempotency keys derived from the rows' keys, so that running a file
// again records nothing twice.
//
// It is a package of its own because it is a capability of its own, used
// by the CLI (engagements import) and meant for the web UI's import page
// too, and because it brings a spreadsheet reader (excelize) that no other
// part of the service should depend on. It records through a Batcher: the
// CLI's is Client, which talks to the service over HTTP as any client
// would; the web UI's runs the same commands through app.ExecuteBatch in
// process. It imports domain (pure rules) and nothing of app, api or
// eventstore.
package importer
