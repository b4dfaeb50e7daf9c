package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// TestVerifyCLINamesAlteredDocument attaches a document through serve's
// Main, rewrites its object in the bucket of the stopped store, and runs
// the CLI's verify on the data directory: it names the document, exit 1.
func TestVerifyCLINamesAlteredDocument(t *testing.T) {
	f := newAuditFixture(t)
	m := startMain(t, f.dir, false)
	pdf := []byte("%PDF-1.4\n% the signed MOU\n%%EOF\n")
	_, d, err := m.Service.Attach(context.Background(), app.Upload{EngagementID: f.agreement, Name: "mou.pdf",
		MediaType: "application/pdf", Body: bytes.NewReader(pdf), Actor: "auditor-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := verifyCLI(t, 0, "--data", f.dir); !rep.OK || rep.Documents != 1 {
		t.Fatalf("verify before: %+v", rep)
	}

	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := store.JetStream().ObjectStore(ctx, eventstore.DocumentBucket)
	if err == nil {
		_, err = obs.Put(ctx, jetstream.ObjectMeta{Name: d.ID}, bytes.NewReader(bytes.ToUpper(pdf)))
	}
	store.Close()
	if err != nil {
		t.Fatal(err)
	}

	rep := verifyCLI(t, 1, "--data", f.dir)
	if rep.OK || rep.Documents != 1 || len(rep.Problems) != 1 || rep.Problems[0].DocumentID != d.ID ||
		rep.Problems[0].EngagementID != f.agreement || !strings.Contains(rep.Problems[0].Problem, "altered") {
		t.Errorf("verify after: %+v", rep)
	}
}
