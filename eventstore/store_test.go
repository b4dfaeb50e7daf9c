package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newTestStore starts a store on an embedded server with no client port.
func newTestStore(t *testing.T) *eventstore.Store {
	t.Helper()
	return openStore(t, eventstore.Config{DataDir: t.TempDir()})
}

// newListeningStore starts a store whose embedded server takes clients on a
// free local port, and a separate JetStream client for raw access.
func newListeningStore(t *testing.T) (*eventstore.Store, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	return newListeningStoreIn(t, t.TempDir())
}

// newListeningStoreIn is newListeningStore on the data directory dir.
func newListeningStoreIn(t *testing.T, dir string) (*eventstore.Store, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s := openStore(t, eventstore.Config{DataDir: dir, NATSListen: "127.0.0.1:-1"})
	nc, js := connect(t, s)
	return s, nc, js
}

// openStore opens a store and closes it when the test ends.
func openStore(t testing.TB, cfg eventstore.Config) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// connect opens a plain NATS client on the store's client port. Cleanups run
// last-in first-out, so it closes before the store does.
func connect(t testing.TB, s *eventstore.Store) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	url := s.ClientURL()
	if url == "" {
		t.Fatal("ClientURL is empty for a store with NATSListen set")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// recordedData is valid engagement.recorded data for an agreement.
var recordedData = json.RawMessage(`{"kind":"agreement","title":"T","parties":["IOM"]}`)

// newEvent is an engagement.recorded event for a new agreement.
func newEvent(engagementID string) domain.Event {
	now := time.Now().UTC().Round(0)
	return domain.Event{
		ID:           newID(),
		Type:         domain.EngagementRecorded,
		EngagementID: engagementID,
		Kind:         domain.KindAgreement,
		Version:      1,
		OccurredAt:   time.Date(2019, 3, 14, 9, 26, 53, 589793000, time.UTC),
		RecordedAt:   now,
		Actor:        "test",
		Data:         recordedData,
	}
}

// mustAppend appends ev and fails the test unless it is stored as new.
func mustAppend(t *testing.T, s *eventstore.Store, ev domain.Event, expected uint64) uint64 {
	t.Helper()
	seq, dup, err := s.Append(t.Context(), ev, expected)
	if err != nil {
		t.Fatalf("Append %s to %s (expected %d): %v", ev.Type, ev.EngagementID, expected, err)
	}
	if dup {
		t.Fatalf("Append %s to %s: duplicate = true, want false", ev.Type, ev.EngagementID)
	}
	return seq
}

func lastSequence(t *testing.T, s *eventstore.Store) uint64 {
	t.Helper()
	last, err := s.LastSequence(t.Context())
	if err != nil {
		t.Fatalf("LastSequence: %v", err)
	}
	return last
}

func TestOpenEmptyStore(t *testing.T) {
	s := newTestStore(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if got := lastSequence(t, s); got != 0 {
		t.Errorf("LastSequence of a new store = %d, want 0", got)
	}
	if got := s.ClientURL(); got != "" {
		t.Errorf("ClientURL without NATSListen = %q, want empty", got)
	}
}

func TestOpenRejectsBadListenAddress(t *testing.T) {
	for _, listen := range []string{"127.0.0.1", "127.0.0.1:http"} {
		t.Run(listen, func(t *testing.T) {
			s, err := eventstore.Open(t.Context(), eventstore.Config{DataDir: t.TempDir(), NATSListen: listen})
			if err == nil {
				s.Close()
				t.Fatalf("Open with NATSListen %q succeeded, want an error", listen)
			}
		})
	}
}

func TestStreamConfig(t *testing.T) {
	s, _, js := newListeningStore(t)
	ctx := t.Context()
	stream, err := js.Stream(ctx, "ENGAGEMENTS")
	if err != nil {
		t.Fatalf("Stream ENGAGEMENTS: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	cfg := info.Config
	if cfg.Name != "ENGAGEMENTS" {
		t.Errorf("name = %q, want ENGAGEMENTS", cfg.Name)
	}
	// Appends come in on the intake subjects, are stored under the
	// contract's, and only what was stored is republished there.
	if len(cfg.Subjects) != 1 || cfg.Subjects[0] != "engagements-intake.>" {
		t.Errorf("subjects = %q, want [engagements-intake.>]", cfg.Subjects)
	}
	if tr := cfg.SubjectTransform; tr == nil || tr.Source != "engagements-intake.>" || tr.Destination != "engagements.>" {
		t.Errorf("subject transform = %+v, want engagements-intake.> to engagements.>", tr)
	}
	if rp := cfg.RePublish; rp == nil || rp.Source != "engagements.>" || rp.Destination != "engagements.>" || rp.HeadersOnly {
		t.Errorf("republish = %+v, want engagements.> to engagements.> with payloads", rp)
	}
	if cfg.Storage != jetstream.FileStorage {
		t.Errorf("storage = %v, want file", cfg.Storage)
	}
	if !cfg.DenyDelete {
		t.Error("DenyDelete = false, want true")
	}
	if !cfg.DenyPurge {
		t.Error("DenyPurge = false, want true")
	}
	if cfg.Duplicates != 30*time.Second || eventstore.DuplicateWindow != 30*time.Second {
		t.Errorf("duplicates window = %v (DuplicateWindow %v), want 30s", cfg.Duplicates, eventstore.DuplicateWindow)
	}
	if cfg.Replicas != 1 {
		t.Errorf("replicas = %d, want 1", cfg.Replicas)
	}
	if !cfg.AllowAtomicPublish {
		t.Error("AllowAtomicPublish = false, want true: group commit writes atomic batches")
	}

	// Deny delete and deny purge hold against a client that tries anyway.
	seq := mustAppend(t, s, newEvent(newID()), 0)
	if err := stream.DeleteMsg(ctx, seq); err == nil {
		t.Error("DeleteMsg succeeded on a deny-delete stream")
	}
	if err := stream.Purge(ctx); err == nil {
		t.Error("Purge succeeded on a deny-purge stream")
	}
	if got := lastSequence(t, s); got != seq {
		t.Errorf("LastSequence after refused delete/purge = %d, want %d", got, seq)
	}
	if _, err := s.Event(ctx, seq); err != nil {
		t.Errorf("Event %d after refused delete/purge: %v", seq, err)
	}
}

func TestReopenKeepsEvents(t *testing.T) {
	for _, sync := range []eventstore.Sync{"", eventstore.SyncAlways, eventstore.SyncInterval} {
		t.Run("sync="+string(sync), func(t *testing.T) {
			dir := t.TempDir()
			cfg := eventstore.Config{DataDir: dir, Sync: sync}

			first, err := eventstore.Open(t.Context(), cfg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			id := newID()
			e1 := newEvent(id)
			e2 := newEvent(id)
			e2.Type, e2.Version, e2.Data = domain.EngagementNoted, 2, json.RawMessage(`{"note":"n"}`)
			seq1, _, err := first.Append(t.Context(), e1, 0)
			if err != nil {
				first.Close()
				t.Fatalf("Append 1: %v", err)
			}
			seq2, _, err := first.Append(t.Context(), e2, seq1)
			if err != nil {
				first.Close()
				t.Fatalf("Append 2: %v", err)
			}
			if err := first.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			second := openStore(t, cfg)
			if got := lastSequence(t, second); got != seq2 {
				t.Errorf("LastSequence after reopen = %d, want %d", got, seq2)
			}
			for _, want := range []struct {
				seq uint64
				ev  domain.Event
			}{{seq1, e1}, {seq2, e2}} {
				got, err := second.Event(t.Context(), want.seq)
				if err != nil {
					t.Fatalf("Event %d after reopen: %v", want.seq, err)
				}
				want.ev.Sequence = want.seq
				assertEvent(t, got, want.ev)
			}
			// The per-engagement sequence survives too: a stale append still conflicts.
			e3 := e2
			e3.ID, e3.Version = newID(), 3
			if _, _, err := second.Append(t.Context(), e3, seq1); !errors.Is(err, domain.ErrConflict) {
				t.Errorf("stale Append after reopen: err = %v, want ErrConflict", err)
			}
			mustAppend(t, second, e3, seq2)
		})
	}
}

func TestAppendAfterCloseIsUnavailable(t *testing.T) {
	s, err := eventstore.Open(t.Context(), eventstore.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, _, err = s.Append(context.Background(), newEvent(newID()), 0)
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("Append after Close: err = %v, want ErrUnavailable", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("Ping after Close: err = %v, want ErrUnavailable", err)
	}
}

func TestParseSync(t *testing.T) {
	tests := []struct {
		in      string
		want    eventstore.Sync
		wantErr bool
	}{
		{in: "always", want: eventstore.SyncAlways},
		{in: "interval", want: eventstore.SyncInterval},
		{in: "", wantErr: true},
		{in: "Always", wantErr: true},
		{in: " always", wantErr: true},
		{in: "never", wantErr: true},
		{in: "always,interval", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := eventstore.ParseSync(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseSync(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSync(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}
