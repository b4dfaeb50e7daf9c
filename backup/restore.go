package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

// ErrNotEmpty says the store to restore into already holds events (or
// one of the backup's other streams holds messages): restore never mixes a
// backup with what is there.
var ErrNotEmpty = errors.New("the store is not empty")

// Result is what a restore found when it verified the restored store.
type Result struct {
	// Report is the verification of the restored event stream up to the
	// backup's last sequence.
	Report domain.Report
	// Messages is how many messages were published, per stream.
	Messages map[string]int
	// Differences says how the restored store differs from the manifest;
	// empty when it is the same.
	Differences []string
}

// OK reports whether the restored store is the one backed up.
func (r *Result) OK() bool { return len(r.Differences) == 0 }

// CheckEmpty returns ErrNotEmpty when the event stream holds a message,
// or a stream of the manifest other than the event stream and the document
// bucket's (which opening the store makes) exists with messages.
func CheckEmpty(ctx context.Context, js jetstream.JetStream, m *Manifest) error {
	for _, sc := range m.Streams {
		s, err := js.Stream(ctx, sc.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
		if info.State.Msgs > 0 || info.State.LastSeq > 0 {
			return fmt.Errorf("%w: stream %s holds %d messages (last sequence %d); restore only into a new store", ErrNotEmpty, sc.Name, info.State.Msgs, info.State.LastSeq)
		}
	}
	return nil
}

// Restore publishes the backup in dir into store, whose event stream must
// be empty, then verifies it. An error means the restore could not be
// made; a Result with Differences a restore that is not the backup.
func Restore(ctx context.Context, store *eventstore.Store, dir string, progress func(stream string, n int)) (*Result, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	js := store.JetStream()
	if err := CheckEmpty(ctx, js, m); err != nil {
		return nil, err
	}
	res := &Result{Messages: map[string]int{}}
	differ := func(format string, args ...any) {
		res.Differences = append(res.Differences, fmt.Sprintf(format, args...))
	}
	for _, sc := range m.Streams {
		if sc.Name != eventstore.StreamName {
			if err := ensureStream(ctx, js, sc.Config); err != nil {
				return res, err
			}
		}
		n, sum, err := publishFile(ctx, js, sc.Name, filepath.Join(dir, sc.File), progress)
		res.Messages[sc.Name] = n
		if err != nil {
			return res, fmt.Errorf("restore stream %s: %w", sc.Name, err)
		}
		if sum != sc.SHA256 {
			differ("%s: the file's sha256 is %s, the manifest says %s (the file was altered)", sc.File, sum, sc.SHA256)
		}
		if n != sc.Messages {
			differ("%s: %d messages, the manifest says %d", sc.File, n, sc.Messages)
		}
	}
	last, err := store.LastSequence(ctx)
	if err != nil {
		return res, err
	}
	if last != m.LastSequence {
		differ("the restored stream ends at sequence %d, the backup at %d", last, m.LastSequence)
	}
	if res.Report, err = store.VerifyUntil(ctx, m.LastSequence, nil); err != nil {
		return res, fmt.Errorf("verify: %w", err)
	}
	for i, p := range res.Report.Problems {
		if i == 10 {
			differ("verify: and %d more problems", len(res.Report.Problems)-10)
			break
		}
		differ("verify: sequence %d: %s", p.Sequence, p.Problem)
	}
	if res.Report.Head != m.Head {
		differ("verify head %s is not the backup's %s", res.Report.Head, m.Head)
	}
	for _, d := range m.Documents {
		sum, size, err := documentSum(ctx, store, d.ID)
		switch {
		case err != nil:
			differ("document %s (%q): %v", d.ID, d.Name, err)
		case sum != d.SHA256 || size != d.Size:
			differ("document %s (%q): restored %d bytes with sha256 %s, the backup recorded %d bytes with sha256 %s", d.ID, d.Name, size, sum, d.Size, d.SHA256)
		}
	}
	return res, nil
}

// ensureStream creates the stream as configured on the source, unless it
// is there (empty, CheckEmpty saw to that).
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	_, err := js.Stream(ctx, cfg.Name)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	// The server's own metadata (_nats.*) is set again by the server.
	md := maps.Clone(cfg.Metadata)
	maps.DeleteFunc(md, func(k, _ string) bool { return strings.HasPrefix(k, "_nats") })
	cfg.Metadata = md
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		return fmt.Errorf("create stream %s: %w", cfg.Name, err)
	}
	return nil
}

// window is how many publishes are in flight at once.
const window = 256

// publishFile publishes the records of path in order. Messages of the event
// stream go to the intake subjects, keep their headers but Nats-Msg-Id (so
// JetStream's duplicate window cannot drop one) and must be stored at their
// recorded sequence; the other streams' messages lose their expectations
// too, as their sequences differ.
func publishFile(ctx context.Context, js jetstream.JetStream, stream, path string, progress func(string, int)) (int, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	sum := sha256.New()
	r := bufio.NewReaderSize(io.TeeReader(f, sum), 1<<20)
	events := stream == eventstore.StreamName
	type pending struct {
		seq uint64
		fut jetstream.PubAckFuture
	}
	var inflight []pending
	wait := func(p pending) error {
		select {
		case ack := <-p.fut.Ok():
			if events && ack.Sequence != p.seq {
				return fmt.Errorf("message %d was stored at sequence %d", p.seq, ack.Sequence)
			}
			return nil
		case err := <-p.fut.Err():
			return fmt.Errorf("message %d: %w", p.seq, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	n := 0
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var rec Record
			if err := json.Unmarshal(line, &rec); err != nil {
				return n, "", fmt.Errorf("line %d: %w", n+1, err)
			}
			msg := &nats.Msg{Subject: rec.Subject, Data: rec.Data, Header: natsHeader(rec.Headers)}
			for k := range msg.Header {
				if k == jetstream.MsgIDHeader || strings.HasPrefix(k, "Nats-Batch-") ||
					!events && strings.HasPrefix(k, "Nats-Expected-") {
					delete(msg.Header, k)
				}
			}
			if events {
				msg.Subject = eventstore.IntakeSubject(rec.Subject)
			}
			fut, perr := js.PublishMsgAsync(msg, jetstream.WithExpectStream(stream))
			if perr != nil {
				return n, "", fmt.Errorf("message %d: %w", rec.Sequence, perr)
			}
			inflight = append(inflight, pending{rec.Sequence, fut})
			if len(inflight) >= window {
				if err := wait(inflight[0]); err != nil {
					return n, "", err
				}
				inflight = inflight[1:]
			}
			n++
			if progress != nil && n%1000 == 0 {
				progress(stream, n)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, "", err
		}
	}
	for _, p := range inflight {
		if err := wait(p); err != nil {
			return n, "", err
		}
	}
	return n, hex.EncodeToString(sum.Sum(nil)), nil
}

// documentSum reads a restored document's bytes.
func documentSum(ctx context.Context, store *eventstore.Store, id string) (string, uint64, error) {
	rc, _, err := store.OpenDocument(ctx, id)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), uint64(n), nil
}
