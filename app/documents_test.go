package app_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// midway is an upload body that, once the document store has begun reading
// it, runs during once: the bytes are then on their way into the bucket.
type midway struct {
	r      io.Reader
	during func()
	once   sync.Once
}

func (m *midway) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.once.Do(m.during)
	return n, err
}

// objects lists the names of the bucket's objects (deleted ones left out).
func objects(t *testing.T, store *eventstore.Store) []string {
	t.Helper()
	obs, err := store.JetStream().ObjectStore(t.Context(), eventstore.DocumentBucket)
	if err != nil {
		t.Fatal(err)
	}
	list, err := obs.List(t.Context())
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range list {
		names = append(names, o.Name)
	}
	return names
}

// TestAttachFailingAfterUploadLeavesNoObject: the append of an upload whose
// bytes are already stored is refused (the engagement moved on past its
// If-Match meanwhile, or the version it supersedes was superseded by
// another upload); the object is deleted again, no event names it.
func TestAttachFailingAfterUploadLeavesNoObject(t *testing.T) {
	store := openTestStore(t, eventstore.Config{})
	svc := app.New(store, startProjector(t, store), nil)
	svc.UseDocuments(store, 0)
	ctx := context.Background()
	rec, err := svc.Execute(ctx, app.Command{Type: domain.EngagementRecorded, Actor: "t",
		Data: []byte(`{"kind":"agreement","title":"MOU","parties":["IOM","WHO"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	id := rec.EngagementID
	pdf := func() []byte { return append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("x"), 300<<10)...) }
	_, first, err := svc.Attach(ctx, app.Upload{EngagementID: id, Name: "v1.pdf", MediaType: "application/pdf",
		Body: bytes.NewReader(pdf()), Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		upload app.Upload
		during func() error
		// adds is how many objects the write meanwhile stores.
		adds int
		want func(error) bool
	}{
		{"the engagement moved past If-Match during the upload → 412",
			app.Upload{Name: "v2.pdf", IfMatch: 2},
			func() error {
				_, err := svc.Execute(ctx, app.Command{EngagementID: id, Type: domain.EngagementNoted, Actor: "other",
					Data: []byte(`{"note":"meanwhile"}`)})
				return err
			}, 0,
			func(err error) bool { return errors.Is(err, domain.ErrPreconditionFailed) }},
		{"another upload superseded the same version meanwhile → 422",
			app.Upload{Name: "v2b.pdf", Supersedes: first.ID},
			func() error {
				_, _, err := svc.Attach(ctx, app.Upload{EngagementID: id, Name: "v2a.pdf", MediaType: "application/pdf",
					Body: bytes.NewReader(pdf()), Supersedes: first.ID, Actor: "other"})
				return err
			}, 1,
			func(err error) bool { var v *domain.ValidationError; return errors.As(err, &v) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := objects(t, store)
			var duringErr error
			u := tc.upload
			u.EngagementID, u.MediaType, u.Actor = id, "application/pdf", "t"
			u.Body = &midway{r: bytes.NewReader(pdf()), during: func() { duringErr = tc.during() }}
			_, _, err := svc.Attach(ctx, u)
			if duringErr != nil {
				t.Fatalf("the write meanwhile: %v", duringErr)
			}
			if !tc.want(err) {
				t.Fatalf("Attach: %v", err)
			}
			after := objects(t, store)
			if len(after) != len(before)+tc.adds {
				t.Errorf("objects before %v, after %v: the refused upload's object stayed", before, after)
			}
			for _, name := range after {
				_, r, err := svc.OpenDocument(ctx, id, name)
				if err != nil {
					t.Errorf("object %s in the bucket is not an attached document: %v", name, err)
					continue
				}
				r.Close()
			}
		})
	}
}
