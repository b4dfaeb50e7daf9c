package eventstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

const testID = "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f40e1"

func TestSubject(t *testing.T) {
	tests := []struct {
		name string
		kind domain.Kind
		typ  domain.EventType
		want string
	}{
		{"agreement signed", domain.KindAgreement, domain.AgreementSigned, "engagements.agreement." + testID + ".signed"},
		{"agreement renewed", domain.KindAgreement, domain.AgreementRenewed, "engagements.agreement." + testID + ".renewed"},
		{"note on an agreement", domain.KindAgreement, domain.EngagementNoted, "engagements.agreement." + testID + ".noted"},
		{"policy recorded", domain.KindPolicy, domain.EngagementRecorded, "engagements.policy." + testID + ".recorded"},
		{"initiative role changed", domain.KindInitiative, domain.InitiativeRoleChanged, "engagements.initiative." + testID + ".role_changed"},
		{"meeting concluded", domain.KindMeeting, domain.MeetingConcluded, "engagements.meeting." + testID + ".concluded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eventstore.Subject(tt.kind, testID, tt.typ)
			if err != nil {
				t.Fatalf("Subject: %v", err)
			}
			if got != tt.want {
				t.Errorf("Subject = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSubjectRejectsBadIDs(t *testing.T) {
	tests := []struct{ name, id string }{
		{"empty", ""},
		{"not a uuid", "not-a-uuid"},
		{"dot", "0193a5b2.7c3d-7e4f-8a9b-0c1d2e3f40e1"},
		{"star", "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f40e*"},
		{"only a star", "*"},
		{"greater-than", "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f40e>"},
		{"only greater-than", ">"},
		{"space", "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f40e "},
		{"leading space", " 0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f40e1"},
		{"tab", "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f40e\t"},
		{"newline", "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f40e\n"},
		{"upper-case uuid", strings.ToUpper(testID)},
		{"mixed-case uuid", "0193A5B2-7c3d-7e4f-8a9b-0c1d2e3f40e1"},
		{"uuid without hyphens", strings.ReplaceAll(testID, "-", "")},
		{"uuid in braces", "{" + testID + "}"},
		{"urn form", "urn:uuid:" + testID},
		{"uuid with a suffix", testID + ".x"},
		{"non-hex of uuid length", "0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f40eg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eventstore.Subject(domain.KindAgreement, tt.id, domain.AgreementSigned)
			if !errors.Is(err, domain.ErrInvalidID) {
				t.Errorf("Subject(id %q) = %q, %v; want ErrInvalidID", tt.id, got, err)
			}
		})
	}
}

func TestSubjectRejectsBadKinds(t *testing.T) {
	for _, kind := range []domain.Kind{"", "Agreement", "engagement", "treaty", "agreement.x", "*", ">", "agreement "} {
		t.Run(string(kind), func(t *testing.T) {
			got, err := eventstore.Subject(kind, testID, domain.EngagementRecorded)
			if err == nil {
				t.Errorf("Subject(kind %q) = %q, want an error", kind, got)
			}
		})
	}
}

func TestSubjectRejectsBadTypes(t *testing.T) {
	for _, typ := range []domain.EventType{
		"", "recorded", "agreement.exploded", "Agreement.Signed", "agreement.*", "agreement.>", "*.signed",
		"agreement.signed ", "agreement.signed.x", "engagement.recorded\n",
	} {
		t.Run(string(typ), func(t *testing.T) {
			got, err := eventstore.Subject(domain.KindAgreement, testID, typ)
			if !errors.Is(err, domain.ErrUnknownEventType) {
				t.Errorf("Subject(type %q) = %q, %v; want ErrUnknownEventType", typ, got, err)
			}
		})
	}
}
