package proofs_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/proofs"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a real embedded nats-server store with the ledger and the
// checkpoint service on it, and the chains of the events it appended.
type fixture struct {
	t      *testing.T
	dir    string
	store  *eventstore.Store
	ledger *proofs.Ledger
	svc    *proofs.Service
	key    ed25519.PrivateKey
	heads  map[string]*chainHead
}

type chainHead struct {
	version int
	hash    string
	seq     uint64 // the engagement's latest message
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: t.TempDir(), key: key, heads: map[string]*chainHead{}}
	f.open()
	t.Cleanup(func() {
		if err := f.store.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

// open opens the store, the ledger and the service on f.dir.
func (f *fixture) open() {
	t := f.t
	t.Helper()
	var err error
	if f.store, err = eventstore.Open(t.Context(), eventstore.Config{DataDir: f.dir}); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if f.ledger, err = proofs.OpenLedger(t.Context(), f.store.JetStream(), 1, false); err != nil {
		t.Fatalf("OpenLedger: %v", err)
	}
	if f.svc, err = proofs.Open(t.Context(), f.store, f.ledger, proofs.Config{Key: f.key}); err != nil {
		t.Fatalf("proofs.Open: %v", err)
	}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// record appends engagement.recorded for a new agreement.
func (f *fixture) record() string {
	id := newID()
	f.heads[id] = &chainHead{}
	f.append(id, domain.EngagementRecorded, `{"kind":"agreement","title":"MOU","parties":["IOM","WHO"]}`)
	return id
}

// note appends engagement.noted to id.
func (f *fixture) note(id, text string) uint64 {
	b, _ := json.Marshal(map[string]string{"note": text})
	return f.append(id, domain.EngagementNoted, string(b))
}

func (f *fixture) append(id string, typ domain.EventType, data string) uint64 {
	t := f.t
	t.Helper()
	h := f.heads[id]
	ev := domain.Event{ID: newID(), Type: typ, EngagementID: id, Kind: domain.KindAgreement, Version: h.version + 1,
		OccurredAt: time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC), RecordedAt: time.Now().UTC(), Actor: "test",
		Data: json.RawMessage(data), PrevHash: h.hash}
	seq, _, err := f.store.Append(t.Context(), ev, h.seq)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	stored, err := f.store.Event(t.Context(), seq)
	if err != nil {
		t.Fatal(err)
	}
	h.version, h.hash, h.seq = ev.Version, stored.Hash, seq
	return seq
}

// checkpoint signs a checkpoint now.
func (f *fixture) checkpoint() proofs.Checkpoint {
	f.t.Helper()
	cp, created, err := f.svc.Create(f.t.Context())
	if err != nil || !created {
		f.t.Fatalf("Create: %v (created %v)", err, created)
	}
	return cp
}

// publishRaw stores a message straight on the stream, around the service.
func (f *fixture) publishRaw(msg *nats.Msg) uint64 {
	f.t.Helper()
	msg.Subject = eventstore.IntakeSubject(msg.Subject)
	ack, err := f.store.JetStream().PublishMsg(f.t.Context(), msg)
	if err != nil {
		f.t.Fatalf("publish: %v", err)
	}
	return ack.Sequence
}

// rewrite replaces the whole event stream by a copy in which alter may
// change each payload, every chain hash recomputed so that the chains
// verify: what someone with the store's files or admin rights could do.
// The ledger is kept. The store and service are reopened.
func (f *fixture) rewrite(alter func(seq uint64, payload []byte) []byte) {
	t := f.t
	t.Helper()
	type stored struct {
		subject string
		payload []byte
	}
	var msgs []stored
	for m, err := range f.store.Read(t.Context(), 0, domain.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, stored{m.Subject, alter(m.Sequence, m.Payload)})
	}
	if err := f.store.JetStream().DeleteStream(t.Context(), eventstore.StreamName); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	f.open()
	prev := map[string]string{}
	for _, m := range msgs {
		id := m.subject // engagements.<kind>.<id>.<verb>: the chain is per engagement
		id = id[len("engagements.agreement.") : len("engagements.agreement.")+36]
		msg := nats.NewMsg(m.subject)
		msg.Data = m.payload
		if prev[id] != "" {
			msg.Header.Set(eventstore.HeaderPrevHash, prev[id])
		}
		prev[id] = eventstore.ChainHash(prev[id], m.subject, m.payload)
		msg.Header.Set(eventstore.HeaderHash, prev[id])
		f.publishRaw(msg)
	}
}

// sameCommitments reports whether two checkpoints commit to the same
// stream: its length, root, head, heads root and engagement count.
func sameCommitments(a, b proofs.Checkpoint) bool {
	return a.Sequence == b.Sequence && a.Root == b.Root && a.Head == b.Head &&
		a.HeadsRoot == b.HeadsRoot && a.Engagements == b.Engagements
}

// runService runs svc.Run until the test ends.
func runService(t *testing.T, svc *proofs.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}
