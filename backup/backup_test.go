package backup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/iom-who/engagements/backup"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// generate publishes events chained events over engagements engagements
// (an engagement.recorded each, then engagement.noted) straight to the
// stream, as eventstore.Append would store them.
func generate(t testing.TB, store *eventstore.Store, events, engagements int) {
	t.Helper()
	js := store.JetStream()
	ids, hashes := make([]string, engagements), make([]string, engagements)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
	}
	for i := range events {
		e := i % engagements
		ev := domain.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: domain.EngagementNoted, EngagementID: ids[e],
			Kind: domain.KindAgreement, Version: i/engagements + 1, OccurredAt: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
			RecordedAt: time.Now().UTC(), Actor: "backup-test",
			Data: json.RawMessage(fmt.Sprintf(`{"note":"Note %d: follow-up agreed."}`, i))}
		if ev.Version == 1 {
			ev.Type = domain.EngagementRecorded
			ev.Data = json.RawMessage(fmt.Sprintf(`{"kind":"agreement","title":"MOU %d","parties":["IOM","WHO"]}`, i))
		}
		subject, err := eventstore.Subject(ev.Kind, ev.EngagementID, ev.Type)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := eventstore.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(eventstore.IntakeSubject(subject))
		msg.Data = payload
		if hashes[e] != "" {
			msg.Header.Set(eventstore.HeaderPrevHash, hashes[e])
		}
		hashes[e] = eventstore.ChainHash(hashes[e], subject, payload)
		msg.Header.Set(eventstore.HeaderHash, hashes[e])
		if _, err := js.PublishMsgAsync(msg, jetstream.WithExpectStream(eventstore.StreamName), jetstream.WithStallWait(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		t.Fatalf("%d publishes not acknowledged", js.PublishAsyncPending())
	}
}

func open(t testing.TB, dir string) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: dir, Sync: eventstore.SyncInterval})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBackupRestoreRoundTrip backs up a generated stream and a document and
// restores it into a new directory: the same head and document. The number
// of events is ENGAGEMENTS_BACKUP_EVENTS (default 2000), and the times are
// logged: the README's figures come from this test with -v.
func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	events := 2000
	if v := os.Getenv("ENGAGEMENTS_BACKUP_EVENTS"); v != "" {
		var err error
		if events, err = strconv.Atoi(v); err != nil || events < 1 {
			t.Fatalf("ENGAGEMENTS_BACKUP_EVENTS=%q", v)
		}
	}
	src := open(t, t.TempDir())
	generate(t, src, events, max(events/10, 1))
	doc := uuid.Must(uuid.NewV7()).String()
	body := strings.Repeat("the signed MOU ", 100_000) // several chunks
	if err := src.PutDocument(ctx, doc, "", "mou.txt", strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b")
	start := time.Now()
	m, err := backup.Backup(ctx, src, out)
	took := time.Since(start)
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	if err := filepath.WalkDir(out, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			info, err := d.Info()
			if err == nil {
				size += info.Size()
			}
			return err
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("backup of %d events: %s (verify and copy), %.1f MB", events, took.Round(time.Millisecond), float64(size)/1e6)
	if m.LastSequence != uint64(events) || m.Events != uint64(events) || len(m.Documents) != 1 || m.Documents[0].ID != doc || m.Documents[0].Size != uint64(len(body)) {
		t.Fatalf("manifest: last %d, %d events, documents %+v", m.LastSequence, m.Events, m.Documents)
	}
	if _, err := backup.Backup(ctx, nil, out); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("backup into a directory that holds one: %v, want 'not empty'", err)
	}

	dst := open(t, t.TempDir())
	defer dst.Close()
	start = time.Now()
	res, err := backup.Restore(ctx, dst, out, nil)
	took = time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore of %d events: %s (publish and verify)", events, took.Round(time.Millisecond))
	if !res.OK() || res.Report.Head != m.Head || res.Messages[eventstore.StreamName] != events {
		t.Fatalf("restore: %+v, want ok with head %s", res, m.Head)
	}
	if _, err := backup.Restore(ctx, dst, out, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second restore: %v, want 'not empty'", err)
	}
}

// TestRestoreNamesAlteredDocument alters one byte of a document's chunk
// in a backup: restore reports that document.
func TestRestoreNamesAlteredDocument(t *testing.T) {
	ctx := context.Background()
	src := open(t, t.TempDir())
	generate(t, src, 10, 2)
	doc := uuid.Must(uuid.NewV7()).String()
	if err := src.PutDocument(ctx, doc, "", "mou.txt", strings.NewReader("the signed MOU")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b")
	_, err := backup.Backup(ctx, src, out)
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(out, "streams", "OBJ_"+eventstore.DocumentBucket+".ndjson")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec backup.Record
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(rec.Subject, ".C.") {
			rec.Data[0] ^= 1
			nl, _ := json.Marshal(rec)
			l = string(nl)
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := open(t, t.TempDir())
	defer dst.Close()
	res, err := backup.Restore(ctx, dst, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || !strings.Contains(strings.Join(res.Differences, "\n"), "document "+doc) {
		t.Errorf("restore of an altered document: %q, want it named", res.Differences)
	}
}
