// Package backup writes an online, consistent copy of a store (the event
// stream, the documents, the token, webhook and calendar buckets and the
// signed checkpoints) to a directory, and restores one into an empty store
// and verifies it. It is its own package because it is the one part that
// reads and writes every JetStream stream of the service as raw messages.
//
// A backup is a directory:
//
//	manifest.json           what the backup holds (Manifest)
//	streams/<STREAM>.ndjson one line per message, in stream order (Record)
//
// Every stream is copied up to the last sequence it had when the backup
// began (the event stream's first), so appends made meanwhile are left out
// whole. A document's bytes are in the object store's stream
// (OBJ_ENGAGEMENTS_DOCUMENTS); the manifest names each document with its
// SHA-256, computed from those same messages.
package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iom-who/engagements/calendars"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/proofs"
	"github.com/iom-who/engagements/tokens"
	"github.com/iom-who/engagements/webhooks"
)

// Format names this layout in the manifest.
const Format = "engagements-backup/1"

// ManifestFile is the manifest's name in a backup directory.
const ManifestFile = "manifest.json"

// objectStream is the stream behind the document bucket.
var objectStream = "OBJ_" + eventstore.DocumentBucket

// Streams are the streams a backup copies, the event stream first; those
// missing on the source are left out. Left out always: the web sessions
// (KV_ENGAGEMENTS_SESSIONS; users sign in again) and directory sign-ins
// under way (KV_ENGAGEMENTS_SIGNINS, ten minutes long), the reminder schedules
// (ENGAGEMENTS_SCHEDULES, made again from the events), the webhooks'
// delivery progress and failures, and every consumer.
//
// The data subjects' keys (KV_ENGAGEMENTS_PERSON_KEYS) are copied: without
// them a restored store reads every sealed personal field as erased. So a
// backup holds the keys of everyone not erased when it was taken, and
// restoring one taken before an erasure brings the erased data back
// (README, "Personal data and erasure").
var Streams = []string{
	eventstore.StreamName,
	proofs.LedgerStream,
	objectStream,
	"KV_" + eventstore.PersonKeyBucket,
	"KV_" + tokens.Bucket,
	"KV_" + webhooks.Bucket,
	"KV_" + calendars.Bucket,
}

// Skipped are the ENGAGEMENTS streams a backup does not copy, named in
// the manifest.
var Skipped = []string{"KV_ENGAGEMENTS_SESSIONS", "KV_ENGAGEMENTS_SIGNINS", "ENGAGEMENTS_SCHEDULES",
	"KV_" + webhooks.ProgressBucket, webhooks.FailureStream}

// Manifest describes a backup.
type Manifest struct {
	Format    string    `json:"format"`
	CreatedAt time.Time `json:"created_at"`
	// LastSequence is the event stream's last sequence backed up; Head the
	// verify head there (Store.VerifyUntil), Events and Engagements its
	// counts.
	LastSequence uint64 `json:"last_sequence"`
	Head         string `json:"head"`
	Events       uint64 `json:"events"`
	Engagements  int    `json:"engagements"`
	// Streams are the streams copied, in restore order.
	Streams []StreamCopy `json:"streams"`
	// Documents are the document bucket's objects.
	Documents []Document `json:"documents"`
	// Skipped are streams deliberately not copied.
	Skipped []string `json:"skipped"`
	// Seconds is how long the backup took.
	Seconds float64 `json:"seconds"`
}

// StreamCopy is one copied stream.
type StreamCopy struct {
	Name string `json:"name"`
	// File is the NDJSON file under the backup directory.
	File string `json:"file"`
	// LastSequence is the source stream's last sequence copied, Messages
	// how many messages the file holds, SHA256 the file's.
	LastSequence uint64 `json:"last_sequence"`
	Messages     int    `json:"messages"`
	SHA256       string `json:"sha256"`
	// Config is the source stream's configuration, to create it again.
	Config jetstream.StreamConfig `json:"config"`
}

// Document is one object of the document bucket.
type Document struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Size   uint64 `json:"size"`
	SHA256 string `json:"sha256"`
}

// Record is one message, a line of a stream file.
type Record struct {
	Sequence uint64              `json:"seq"`
	Subject  string              `json:"subject"`
	Headers  map[string][]string `json:"headers,omitempty"`
	Data     []byte              `json:"data"`
}

// Backup copies store's streams into the directory out, which must not
// exist yet or be empty, and returns the manifest it wrote there.
func Backup(ctx context.Context, store *eventstore.Store, out string) (*Manifest, error) {
	start := time.Now()
	if err := prepareDir(out); err != nil {
		return nil, err
	}
	js := store.JetStream()
	// The last sequences first: the checkpoints' before the event
	// stream's, so no checkpoint copied is of an event left out; the event
	// stream's before the others', so every object an event names was
	// stored before its stream was measured.
	type src struct {
		s    jetstream.Stream
		last uint64
	}
	measured := map[string]src{}
	m := &Manifest{Format: Format, CreatedAt: start.UTC(), Skipped: Skipped, Documents: []Document{}}
	order := append([]string{proofs.LedgerStream}, slices.DeleteFunc(slices.Clone(Streams), func(n string) bool { return n == proofs.LedgerStream })...)
	for _, name := range order {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) && name != eventstore.StreamName {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		measured[name] = src{s, info.State.LastSeq}
	}
	var srcs []src
	for _, name := range Streams {
		if sc, ok := measured[name]; ok {
			srcs = append(srcs, sc)
		}
	}
	m.LastSequence = srcs[0].last
	rep, err := store.VerifyUntil(ctx, m.LastSequence, nil)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if !rep.OK {
		return nil, fmt.Errorf("the store does not verify (%d problems, the first: %s); not backing it up", len(rep.Problems), rep.Problems[0].Problem)
	}
	m.Head, m.Events, m.Engagements = rep.Head, rep.Events, rep.Engagements
	if err := os.MkdirAll(filepath.Join(out, "streams"), 0o755); err != nil {
		return nil, err
	}
	for _, sc := range srcs {
		cfg := sc.s.CachedInfo().Config
		c := StreamCopy{Name: cfg.Name, File: "streams/" + cfg.Name + ".ndjson", LastSequence: sc.last, Config: cfg}
		var docs *docHasher
		if cfg.Name == objectStream {
			docs = newDocHasher()
		}
		if c.Messages, c.SHA256, err = copyStream(ctx, js, cfg.Name, sc.last, filepath.Join(out, c.File), docs); err != nil {
			return nil, fmt.Errorf("copy stream %s: %w", cfg.Name, err)
		}
		if docs != nil {
			m.Documents = docs.documents()
		}
		m.Streams = append(m.Streams, c)
	}
	m.Seconds = time.Since(start).Seconds()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(out, ManifestFile), append(b, '\n')); err != nil {
		return nil, err
	}
	return m, nil
}

// prepareDir makes out, refusing one that holds anything.
func prepareDir(out string) error {
	entries, err := os.ReadDir(out)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(out, 0o755)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty: give a new directory for the backup", out)
	}
	return nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyStream writes stream's messages up to last to path as NDJSON.
func copyStream(ctx context.Context, js jetstream.JetStream, stream string, last uint64, path string, docs *docHasher) (int, string, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	sum := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, sum), 1<<20)
	enc := json.NewEncoder(w)
	n := 0
	if info, err := js.Stream(ctx, stream); err != nil {
		return 0, "", err
	} else if st := info.CachedInfo().State; st.Msgs == 0 || st.FirstSeq > last {
		last = 0 // nothing to copy
	}
	if last > 0 {
		cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
		if err != nil {
			return 0, "", err
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(1024))
		if err != nil {
			return 0, "", err
		}
		defer it.Stop()
		for {
			msg, err := nextMsg(ctx, it)
			if err != nil {
				return n, "", err
			}
			meta, err := msg.Metadata()
			if err != nil {
				return n, "", err
			}
			seq := meta.Sequence.Stream
			if seq > last {
				break
			}
			rec := Record{Sequence: seq, Subject: msg.Subject(), Data: msg.Data()}
			if h := msg.Headers(); len(h) > 0 {
				rec.Headers = h
			}
			if err := enc.Encode(rec); err != nil {
				return n, "", err
			}
			if docs != nil {
				if err := docs.add(rec); err != nil {
					return n, "", err
				}
			}
			n++
			// NumPending 0: nothing after it yet, as when the messages up
			// to last were removed (a KV purge) after last was measured.
			if seq == last || meta.NumPending == 0 {
				break
			}
		}
	}
	if err := w.Flush(); err != nil {
		return n, "", err
	}
	if err := f.Sync(); err != nil {
		return n, "", err
	}
	return n, hex.EncodeToString(sum.Sum(nil)), f.Close()
}

// nextMsg waits for the next message, giving up when ctx ends.
func nextMsg(ctx context.Context, it jetstream.MessagesContext) (jetstream.Msg, error) {
	type res struct {
		m   jetstream.Msg
		err error
	}
	ch := make(chan res, 1)
	go func() {
		m, err := it.Next()
		ch <- res{m, err}
	}()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-ctx.Done():
		it.Stop()
		<-ch
		return nil, ctx.Err()
	}
}

// docHasher computes the documents' SHA-256 from the object stream's
// messages: chunks ($O.<bucket>.C.<nuid>) and metas ($O.<bucket>.M.<name>,
// an ObjectInfo, the last of a name counting).
type docHasher struct {
	chunks map[string]hash.Hash
	metas  map[string]jetstream.ObjectInfo
	order  []string
}

func newDocHasher() *docHasher {
	return &docHasher{chunks: map[string]hash.Hash{}, metas: map[string]jetstream.ObjectInfo{}}
}

func (d *docHasher) add(r Record) error {
	prefix := "$O." + eventstore.DocumentBucket + "."
	rest, ok := strings.CutPrefix(r.Subject, prefix)
	if !ok {
		return nil
	}
	switch {
	case strings.HasPrefix(rest, "C."):
		nuid := rest[2:]
		h, ok := d.chunks[nuid]
		if !ok {
			h = sha256.New()
			d.chunks[nuid] = h
		}
		h.Write(r.Data)
	case strings.HasPrefix(rest, "M."):
		var info jetstream.ObjectInfo
		if err := json.Unmarshal(r.Data, &info); err != nil {
			return fmt.Errorf("object meta %s: %w", r.Subject, err)
		}
		if _, seen := d.metas[info.Name]; !seen {
			d.order = append(d.order, info.Name)
		}
		d.metas[info.Name] = info
	}
	return nil
}

func (d *docHasher) documents() []Document {
	out := []Document{}
	for _, name := range d.order {
		info := d.metas[name]
		if info.Deleted {
			continue
		}
		doc := Document{ID: info.Name, Name: info.Description, Size: info.Size}
		if h, ok := d.chunks[info.NUID]; ok {
			doc.SHA256 = hex.EncodeToString(h.Sum(nil))
		} else {
			doc.SHA256 = hex.EncodeToString(sha256.New().Sum(nil)) // no chunks: empty
		}
		out = append(out, doc)
	}
	return out
}

// ReadManifest reads dir's manifest.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%s: format %q is not %q", ManifestFile, m.Format, Format)
	}
	if len(m.Streams) == 0 || m.Streams[0].Name != eventstore.StreamName {
		return nil, fmt.Errorf("%s: the first stream is not %s", ManifestFile, eventstore.StreamName)
	}
	for _, s := range m.Streams {
		if s.File != "streams/"+s.Name+".ndjson" || strings.ContainsAny(s.Name, "/\\.") {
			return nil, fmt.Errorf("%s: stream %q has an unexpected file %q", ManifestFile, s.Name, s.File)
		}
	}
	return &m, nil
}

// natsHeader converts a record's headers.
func natsHeader(h map[string][]string) nats.Header {
	if len(h) == 0 {
		return nil
	}
	out := nats.Header{}
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}
