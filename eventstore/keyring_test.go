package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// sealedFocalPoint is a focal point assignment sealed by k, as the command
// path stores it.
func sealedFocalPoint(t testing.TB, k *eventstore.Keyring, name, email string) domain.Event {
	t.Helper()
	ev := domain.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: domain.EngagementFocalPointAssigned,
		Data: json.RawMessage(`{"party":"WHO","name":"` + name + `","email":"` + email + `"}`)}
	if err := k.SealEvent(context.Background(), &ev, "", nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ev.Data), name) || strings.Contains(string(ev.Data), email) {
		t.Fatalf("sealed data holds plain text: %s", ev.Data)
	}
	return ev
}

// A sealed value opens only in its own event and field, under its own key;
// anything else reads erased, never as another value.
func TestKeyringBindsSealedValues(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, eventstore.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1"})
	k := s.Keyring()
	a := sealedFocalPoint(t, k, "Ana Lopez", "ana@who.int")
	b := sealedFocalPoint(t, k, "Bo Chen", "bo@who.int")
	var da, db map[string]string
	_ = json.Unmarshal(a.Data, &da)
	_ = json.Unmarshal(b.Data, &db)
	idA, err := k.PersonID(ctx, " ANA@who.int ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(da["name"], idA) || !strings.Contains(da["email"], idA) {
		t.Fatalf("name and e-mail not sealed for the e-mail's person %s: %v", idA, da)
	}
	for _, tc := range []struct {
		name string
		data map[string]string
		id   string // the event the data is read as part of
		want string
	}{
		{"its own event opens", da, a.ID, "Ana Lopez"},
		{"moved to another event → erased", da, b.ID, domain.Erased},
		{"swapped with another field → erased", map[string]string{"party": "WHO", "name": da["email"], "email": da["name"]}, a.ID, domain.Erased},
		{"another person's value opens as theirs", db, b.ID, "Bo Chen"},
		{"a tampered ciphertext → erased", map[string]string{"party": "WHO", "name": da["name"][:len(da["name"])-2] + "AA", "email": da["email"]}, a.ID, domain.Erased},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(tc.data)
			ev := domain.Event{ID: tc.id, Type: domain.EngagementFocalPointAssigned, Data: raw}
			got := openData(t, k, ev)
			if got["name"] != tc.want {
				t.Errorf("name opened as %q, want %q", got["name"], tc.want)
			}
		})
	}

	// Erasing: 404 for nobody, then the key is gone, then 409.
	if _, err := k.Erase(ctx, "p"+strings.Repeat("0", 32), "admin", time.Now()); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("erase nobody: %v", err)
	}
	if _, err := k.Erase(ctx, idA, "admin", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Erase(ctx, idA, "admin", time.Now()); !errors.Is(err, domain.ErrConflict) {
		t.Errorf("erase twice: %v", err)
	}
	// A fresh keyring (another instance, a restart) reads it erased too.
	s2 := openStore(t, eventstore.Config{NATSURL: s.ClientURL()})
	got := openData(t, s2.Keyring(), a)
	if got["name"] != domain.Erased || got["email"] != domain.Erased {
		t.Errorf("after the erasure: %v", got)
	}
	if got := openData(t, s2.Keyring(), b); got["name"] != "Bo Chen" {
		t.Errorf("another person after the erasure: %v", got)
	}
}

// openData opens ev through k and returns its data's strings.
func openData(t *testing.T, k *eventstore.Keyring, ev domain.Event) map[string]string {
	t.Helper()
	if err := k.OpenEvent(context.Background(), &ev); err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	if err := json.Unmarshal(ev.Data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// BenchmarkSealAndOpen seals a focal point's name and e-mail for a known
// person (its key cached) and opens them again: what sealing adds to an
// append with personal fields, and opening to each read of one.
func BenchmarkSealAndOpen(b *testing.B) {
	s := openStore(b, eventstore.Config{DataDir: b.TempDir()})
	k := s.Keyring()
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7()).String()
	data := json.RawMessage(`{"party":"WHO","name":"Ana Lopez","email":"ana@who.int","role":"Director"}`)
	b.ReportAllocs()
	for b.Loop() {
		ev := domain.Event{ID: id, Type: domain.EngagementFocalPointAssigned, Data: data}
		if err := k.SealEvent(ctx, &ev, "", nil); err != nil {
			b.Fatal(err)
		}
		if err := k.OpenEvent(ctx, &ev); err != nil || len(ev.Personal) != 2 {
			b.Fatal(err, ev.Personal)
		}
	}
}
