package importer

import (
	"slices"

	"github.com/iom-who/engagements/domain"
)

// The template's sheets.
const (
	SheetEngagements = "engagements"
	SheetEvents      = "events"
	// SheetHelp describes the columns; it is not read.
	SheetHelp = "help"
)

// Columns of the engagements sheet that are not fields of
// engagement.recorded's data.
const (
	ColKey        = "key"
	ColOccurredAt = "occurred_at"
	// ColEngagement is the events sheet's reference to an engagements row,
	// by its key.
	ColEngagement = "engagement"
	ColType       = "type"
	// ColTarget is engagement.linked's target_id: the key of an engagements
	// row, or the id of an engagement already recorded.
	ColTarget = "target"
	// ColSheet says, in a CSV file, which sheet a row belongs to.
	ColSheet = "sheet"
)

// EngagementColumns are the engagements sheet's columns, in the template's
// order: key, then engagement.recorded's fields, then occurred_at.
func EngagementColumns() []string {
	cols := []string{ColKey}
	spec, _ := domain.SpecOf(domain.EngagementRecorded)
	for _, f := range spec.Fields {
		cols = append(cols, f.Name)
	}
	return append(cols, ColOccurredAt)
}

// EventColumns are the events sheet's columns, in the template's order:
// engagement (a key of the engagements sheet), key (optional, the event's
// own), type and occurred_at, then every field of every event type's data
// that may be imported (target for target_id), each once.
func EventColumns() []string {
	cols := []string{ColEngagement, ColKey, ColType, ColOccurredAt}
	for _, spec := range domain.Specs() {
		if !importable(spec.Type) {
			continue
		}
		for _, f := range spec.Fields {
			if c := column(f.Name); !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
		}
	}
	return cols
}

// importable reports whether events of type t may be imported: not
// engagement.recorded (a row of the engagements sheet records it),
// engagement.corrected (it names an event id no spreadsheet knows), nor a
// type only an upload records (engagement.document_attached: the file's
// bytes are not in the sheet), nor a reminder (the service records them).
func importable(t domain.EventType) bool {
	if s, ok := domain.SpecOf(t); ok && (s.Upload || s.System || s.Erasure) {
		return false
	}
	return t != domain.EngagementRecorded && t != domain.EngagementCorrected
}

// column is the events sheet's column of a data field.
func column(field string) string {
	if field == "target_id" {
		return ColTarget
	}
	return field
}

// isDate reports whether a column holds a date (YYYY-MM-DD) or a time.
func isDate(col string) bool {
	if col == ColOccurredAt {
		return true
	}
	for _, spec := range domain.Specs() {
		if f, ok := spec.Field(col); ok && f.Input == domain.InputDate {
			return true
		}
	}
	return false
}
