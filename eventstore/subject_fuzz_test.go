package eventstore_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// canonicalUUID is a UUID as the subject must hold it: lower-case hex, hyphenated.
var canonicalUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// FuzzSubject feeds arbitrary kinds, ids and types to Subject, the one place
// that builds subjects. It must never panic, and a subject it builds must be
// engagements.<kind>.<id>.<verb> with nothing in it that NATS would read as
// a wildcard or a separator: four non-empty tokens, no '*', '>' or
// whitespace, the id a canonical lower-case UUID. It succeeds exactly when
// the kind, id and type are allow-listed.
func FuzzSubject(f *testing.F) {
	f.Add("agreement", testID, "agreement.signed")
	f.Add("meeting", testID, "engagement.corrected")
	f.Add("initiative", testID, "initiative.role_changed")
	f.Add("policy", strings.ToUpper(testID), "policy.adopted")
	f.Add("agreement", testID+".x", "agreement.signed")
	f.Add("agreement.*", testID, "agreement.>")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, kind, id, typ string) {
		subject, err := eventstore.Subject(domain.Kind(kind), id, domain.EventType(typ))
		_, typeErr := domain.ParseEventType(typ)
		allowed := domain.Kind(kind).Valid() && domain.CheckID(id) == nil && typeErr == nil
		if (err == nil) != allowed {
			t.Fatalf("Subject(%q, %q, %q) = %q, %v; want success only for allow-listed input", kind, id, typ, subject, err)
		}
		if err != nil {
			return
		}
		if !strings.HasPrefix(subject, "engagements.") {
			t.Fatalf("subject %q does not start with engagements.", subject)
		}
		if strings.ContainsAny(subject, "*>") || strings.ContainsFunc(subject, unicode.IsSpace) {
			t.Fatalf("subject %q holds a wildcard or whitespace", subject)
		}
		tokens := strings.Split(subject, ".")
		if len(tokens) != 4 {
			t.Fatalf("subject %q has %d tokens, want 4", subject, len(tokens))
		}
		for i, tok := range tokens {
			if tok == "" {
				t.Fatalf("subject %q has an empty token %d", subject, i)
			}
		}
		if !canonicalUUID.MatchString(tokens[2]) {
			t.Fatalf("subject %q: id token %q is not a canonical lower-case UUID", subject, tokens[2])
		}
		if tokens[1] != kind || tokens[2] != id || tokens[3] != domain.EventType(typ).Verb() {
			t.Fatalf("subject %q does not name kind %q, id %q and the verb of %q", subject, kind, id, typ)
		}
	})
}
