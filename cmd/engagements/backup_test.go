package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/backup"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// getBody GETs url with testToken and returns the status and body.
func getBody(t *testing.T, url string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestBackupWhileWritingAndRestore backs up a running serve over its NATS
// port while a goroutine records engagements through the command path,
// restores the backup into a new directory and checks that it is the same
// store up to the backed-up sequence: the verify head, the document, the
// admin token, what the API serves. Then restore refuses a store that is not
// empty and leaves it as it was, and a backup with one byte of one event
// altered fails restore's verification.
func TestBackupWhileWritingAndRestore(t *testing.T) {
	ctx := context.Background()
	const admin = "nats-admin-token-0123456789"
	dir := t.TempDir()
	m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: dir, NATSListen: "127.0.0.1:-1", Sync: "always", Replicas: 1,
		NATSAdminToken: admin}}
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		t.Fatalf("start: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = m.Close()
		}
	}()
	readToken(t, dir)
	record := func(title string) (app.Result, error) {
		return m.Service.Execute(ctx, app.Command{Type: domain.EngagementRecorded, Actor: "backup-test",
			Data: json.RawMessage(fmt.Sprintf(`{"kind":"agreement","title":%q,"parties":["IOM","WHO"]}`, title))})
	}
	first, err := record("MOU")
	if err != nil {
		t.Fatal(err)
	}
	pdf := []byte("%PDF-1.4\n% the signed MOU, 1999\n%%EOF\n")
	_, doc, err := m.Service.Attach(ctx, app.Upload{EngagementID: first.EngagementID, Name: "mou.pdf",
		MediaType: "application/pdf", Body: bytes.NewReader(pdf), Actor: "backup-test"})
	if err != nil {
		t.Fatal(err)
	}

	if _, _, err := m.Proofs.Create(ctx); err != nil {
		t.Fatalf("sign a checkpoint: %v", err)
	}

	// The write load: engagements recorded one after another until told to
	// stop; ready is closed after the first ten.
	var (
		mu      sync.Mutex
		written []app.Result
		stop    = make(chan struct{})
		ready   = make(chan struct{})
		wg      sync.WaitGroup
		loadErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r, err := record(fmt.Sprintf("load %d", i))
			if err != nil {
				loadErr = err
				return
			}
			mu.Lock()
			written = append(written, r)
			n := len(written)
			mu.Unlock()
			if n == 10 {
				close(ready)
			}
		}
	}()
	<-ready
	mu.Lock()
	before := len(written)
	mu.Unlock()
	out := filepath.Join(t.TempDir(), "backup")
	code, stdout, stderr := runCLI("backup", "--nats-url", m.Store.ClientURL(), "--nats-token", admin, "--out", out)
	close(stop)
	wg.Wait()
	if loadErr != nil {
		t.Fatalf("write load: %v", loadErr)
	}
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("backup: %s", stdout)
	man, err := backup.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) == before {
		t.Errorf("no engagement was recorded while the backup ran (%d before, %d after)", before, len(written))
	}
	last, err := m.Store.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if man.LastSequence < uint64(2+before) || man.LastSequence > last {
		t.Errorf("backup's last sequence %d, want between %d and the stream's %d", man.LastSequence, 2+before, last)
	}
	if len(man.Documents) != 1 || man.Documents[0].ID != doc.ID || man.Documents[0].SHA256 != doc.SHA256 {
		t.Errorf("manifest documents %+v, want %s with sha256 %s", man.Documents, doc.ID, doc.SHA256)
	}
	// What the original serves, engagement by engagement.
	original := map[string][]byte{}
	var inBackup []string
	for _, r := range append([]app.Result{first}, written...) {
		status, body := getBody(t, m.URL()+"/v1/engagements/"+r.EngagementID)
		if status != http.StatusOK {
			t.Fatalf("GET %s on the original: %d", r.EngagementID, status)
		}
		original[r.EngagementID] = body
		if r.Sequence <= man.LastSequence {
			inBackup = append(inBackup, r.EngagementID)
		}
	}
	if len(inBackup) != man.Engagements {
		t.Errorf("%d engagements recorded up to sequence %d, the manifest says %d", len(inBackup), man.LastSequence, man.Engagements)
	}
	closed = true
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	repOriginal := verifyCLI(t, 0, "--data", dir)

	restored := filepath.Join(t.TempDir(), "restored")
	code, stdout, stderr = runCLI("restore", "--data", restored, out)
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("restore: %s", stdout)
	rep := verifyCLI(t, 0, "--data", restored)
	if rep.Head != man.Head || rep.LastSequence != man.LastSequence || rep.Documents != 1 {
		t.Errorf("verify of the restored store: head %s at %d with %d documents, want %s at %d with 1",
			rep.Head, rep.LastSequence, rep.Documents, man.Head, man.LastSequence)
	}
	if c := rep.Checkpoints; c == nil || c.Checked == 0 || c.Valid != c.Checked || c.LatestSequence > man.LastSequence {
		t.Errorf("checkpoints of the restored store: %+v, want some, every one valid, none after sequence %d", c, man.LastSequence)
	}
	if rep := verifyCLI(t, 0, "--data", dir, "--until", fmt.Sprint(man.LastSequence)); rep.Head != man.Head {
		t.Errorf("the original's head at %d is %s, the backup recorded %s", man.LastSequence, rep.Head, man.Head)
	}

	t.Run("the API serves the same engagements with the first store's admin token", func(t *testing.T) {
		m2 := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: restored, Sync: "always", Replicas: 1}}
		if err := m2.Run(ctx); err != nil {
			_ = m2.Close()
			t.Fatalf("start on the restored directory: %v", err)
		}
		defer func() {
			if err := m2.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}()
		if m2.AdminToken != "" {
			t.Errorf("serve made a new admin token on the restored store: the tokens were not restored")
		}
		for id, want := range original {
			status, body := getBody(t, m2.URL()+"/v1/engagements/"+id)
			backedUp := false
			for _, b := range inBackup {
				backedUp = backedUp || b == id
			}
			switch {
			case backedUp && status != http.StatusOK:
				t.Errorf("GET %s on the restored store: %d %s", id, status, body)
			case backedUp && !bytes.Equal(body, want):
				t.Errorf("GET %s: restored\n%s\noriginal\n%s", id, body, want)
			case !backedUp && status != http.StatusNotFound:
				t.Errorf("GET %s, recorded after the backup's last sequence: %d, want 404", id, status)
			}
		}
		status, body := getBody(t, m2.URL()+"/v1/engagements/"+first.EngagementID+"/documents/"+doc.ID)
		if status != http.StatusOK || !bytes.Equal(body, pdf) {
			t.Errorf("document on the restored store: %d %q, want 200 and the uploaded bytes", status, body)
		}
	})

	t.Run("the same messages at the same sequences", func(t *testing.T) {
		a, err := eventstore.Open(ctx, eventstore.Config{DataDir: dir, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := eventstore.Open(ctx, eventstore.Config{DataDir: restored, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		sa, errA := a.JetStream().Stream(ctx, eventstore.StreamName)
		sb, errB := b.JetStream().Stream(ctx, eventstore.StreamName)
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		for seq := uint64(1); seq <= man.LastSequence; seq++ {
			ma, errA := sa.GetMsg(ctx, seq)
			mb, errB := sb.GetMsg(ctx, seq)
			if errA != nil || errB != nil {
				t.Fatalf("message %d: %v, %v", seq, errA, errB)
			}
			ha := maps.Clone(ma.Header)
			delete(ha, jetstream.MsgIDHeader) // restore publishes without it
			// JetStream's own store time is the restore's.
			hb := maps.Clone(mb.Header)
			delete(ha, "Nats-Time-Stamp")
			delete(hb, "Nats-Time-Stamp")
			if ma.Subject != mb.Subject || !bytes.Equal(ma.Data, mb.Data) || !reflect.DeepEqual(ha, hb) {
				t.Errorf("message %d differs:\n%s %v %s\n%s %v %s", seq, ma.Subject, ma.Header, ma.Data, mb.Subject, mb.Header, mb.Data)
			}
		}
	})

	t.Run("refuses a store that is not empty", func(t *testing.T) {
		code, _, stderr := runCLI("restore", "--data", dir, out)
		if code != 1 || !strings.Contains(stderr, "not empty") {
			t.Errorf("restore into the original: exit %d, stderr %q; want 1 and 'not empty'", code, stderr)
		}
		if rep := verifyCLI(t, 0, "--data", dir); rep.Head != repOriginal.Head || rep.Events != repOriginal.Events {
			t.Errorf("the refused restore changed the store: %d events head %s, before %d head %s",
				rep.Events, rep.Head, repOriginal.Events, repOriginal.Head)
		}
	})

	t.Run("an altered event fails the restore's verification", func(t *testing.T) {
		altered := filepath.Join(t.TempDir(), "altered")
		if err := os.CopyFS(altered, os.DirFS(out)); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(altered, "streams", "ENGAGEMENTS.ndjson")
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
		var rec backup.Record
		if err := json.Unmarshal(lines[len(lines)/2], &rec); err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(rec.Data, []byte("load"))
		if i < 0 {
			t.Fatalf("no title in the middle event %s", rec.Data)
		}
		rec.Data[i] = 'L' // one byte of one event
		line, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(line, lines[len(lines)/2]) || !strings.Contains(string(line), base64.StdEncoding.EncodeToString(rec.Data)) {
			t.Fatal("the record did not change")
		}
		lines[len(lines)/2] = line
		if err := os.WriteFile(file, append(bytes.Join(lines, []byte("\n")), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runCLI("restore", "--data", filepath.Join(t.TempDir(), "r"), altered)
		t.Logf("restore of the altered backup:\n%s", stderr)
		if code != 1 || !strings.Contains(stderr, "NOT the backup") || !strings.Contains(stderr, "head") ||
			!strings.Contains(stderr, fmt.Sprintf("sequence %d", rec.Sequence)) {
			t.Errorf("restore of an altered backup: exit %d, stderr:\n%s\nwant 1 naming sequence %d and the head", code, stderr, rec.Sequence)
		}
	})
}

func TestBackupRestoreFlags(t *testing.T) {
	dir := t.TempDir()
	notBackup := t.TempDir()
	tests := []struct {
		name string
		args []string
		want int
		says string
	}{
		{"backup without --out", []string{"backup", "--data", dir}, 2, "--out"},
		{"backup from neither", []string{"backup", "--out", filepath.Join(dir, "b")}, 2, "exactly one"},
		{"backup from both", []string{"backup", "--out", filepath.Join(dir, "b"), "--data", dir, "--nats-url", "nats://127.0.0.1:1"}, 2, "exactly one"},
		{"restore without a path", []string{"restore", "--data", dir}, 2, "one backup directory"},
		{"restore with two paths", []string{"restore", "--data", dir, notBackup, notBackup}, 2, "one backup directory"},
		{"restore into neither", []string{"restore", notBackup}, 2, "exactly one"},
		{"restore of a directory that is no backup", []string{"restore", "--data", filepath.Join(dir, "r"), notBackup}, 2, "manifest.json"},
		{"restore with a token and no URL", []string{"restore", "--data", dir, "--nats-token", "x", notBackup}, 2, "--nats-token is for --nats-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(tt.args...)
			if code != tt.want || !strings.Contains(stderr, tt.says) {
				t.Errorf("exit %d, stderr %q; want %d saying %q", code, stderr, tt.want, tt.says)
			}
		})
	}
}

// restore --nats-url restores into an empty NATS server that no serve uses
// yet (here an embedded one with a client port).
func TestRestoreIntoNATSURL(t *testing.T) {
	f := newAuditFixture(t)
	out := filepath.Join(t.TempDir(), "backup")
	if code, stdout, stderr := runCLI("backup", "--data", f.dir, "--out", out); code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, stdout, stderr)
	}
	man, err := backup.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	target, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	code, stdout, stderr := runCLI("restore", "--nats-url", target.ClientURL(), out)
	if code != 0 {
		t.Fatalf("restore --nats-url: exit %d\n%s%s", code, stdout, stderr)
	}
	rep := verifyCLI(t, 0, "--nats-url", target.ClientURL())
	if rep.Head != man.Head || rep.Events != uint64(f.events) {
		t.Errorf("verify after restore --nats-url: %d events head %s, want %d and %s", rep.Events, rep.Head, f.events, man.Head)
	}
	if code, _, stderr := runCLI("restore", "--nats-url", target.ClientURL(), out); code != 1 || !strings.Contains(stderr, "not empty") {
		t.Errorf("second restore --nats-url: exit %d %q, want 1 'not empty'", code, stderr)
	}
}
