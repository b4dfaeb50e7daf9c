package proofs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// LedgerStream is the JetStream stream that keeps signed checkpoints and
// the public keys that sign them. Like the event stream it denies deletes
// and purges, and it is on subjects of its own (not under engagements.>,
// so no subscriber of the events sees it, and not on any subject a
// subscriber token may publish to).
const LedgerStream = "ENGAGEMENTS_CHECKPOINTS"

const (
	ledgerRoot        = "engagements-checkpoints"
	checkpointSubject = ledgerRoot + ".checkpoint"
	keySubjectPrefix  = ledgerRoot + ".key."
)

// maxRecord bounds one ledger message.
const maxRecord = 64 << 10

// Ledger is the checkpoint stream on the event store's connection.
type Ledger struct {
	stream jetstream.Stream
	js     jetstream.JetStream
}

// Record is one message of the ledger: a checkpoint or a key, as JSON.
type Record struct {
	Sequence uint64
	// KeyID is set for a key record.
	KeyID string
	Data  []byte
}

// OpenLedger opens the ledger on js, creating or updating its stream with
// the given replicas unless readOnly (audits of a stopped or running
// serve), where a missing stream is an empty ledger.
func OpenLedger(ctx context.Context, js jetstream.JetStream, replicas int, readOnly bool) (*Ledger, error) {
	l := &Ledger{js: js}
	var err error
	if readOnly {
		l.stream, err = js.Stream(ctx, LedgerStream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return l, nil
		}
	} else {
		l.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        LedgerStream,
			Description: "Signed checkpoints of the ENGAGEMENTS stream, and the public keys that sign them",
			Subjects:    []string{ledgerRoot + ".>"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Replicas:    max(replicas, 1),
			DenyDelete:  true,
			DenyPurge:   true,
			AllowDirect: true,
			MaxMsgSize:  maxRecord,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint stream %s: %w", LedgerStream, eventstore.Unavailable(err))
	}
	return l, nil
}

// AppendCheckpoint stores a checkpoint's JSON and returns its ledger sequence.
func (l *Ledger) AppendCheckpoint(ctx context.Context, data []byte) (uint64, error) {
	return l.publish(ctx, checkpointSubject, data)
}

// AddKey stores a key's JSON under its id (KeyID's 16 hex digits).
func (l *Ledger) AddKey(ctx context.Context, keyID string, data []byte) error {
	if !hex16.MatchString(keyID) {
		return fmt.Errorf("key id %q is not 16 lower-case hex digits", keyID)
	}
	_, err := l.publish(ctx, keySubjectPrefix+keyID, data)
	return err
}

func (l *Ledger) publish(ctx context.Context, subject string, data []byte) (uint64, error) {
	if l.stream == nil {
		return 0, errors.New("the checkpoint stream is read-only here")
	}
	ack, err := l.js.Publish(ctx, subject, data, jetstream.WithExpectStream(LedgerStream))
	if err != nil {
		return 0, fmt.Errorf("store on %s: %w", subject, eventstore.Unavailable(err))
	}
	return ack.Sequence, nil
}

// Records reads every record of the ledger in order.
func (l *Ledger) Records(ctx context.Context) ([]Record, error) {
	if l.stream == nil {
		return nil, nil
	}
	info, err := l.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("checkpoint stream info: %w", eventstore.Unavailable(err))
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	last := info.State.LastSeq
	cons, err := l.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", eventstore.Unavailable(err))
	}
	var out []Record
	for {
		// Exactly as many as are left (there are no deletes), so that no
		// fetch is left waiting once the last one is here.
		want := last
		if n := len(out); n > 0 {
			want = last - out[n-1].Sequence
		}
		batch, err := cons.Fetch(int(min(want, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read checkpoints: %w", eventstore.Unavailable(err))
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				return nil, fmt.Errorf("read checkpoints: %w", err)
			}
			r := Record{Sequence: meta.Sequence.Stream, Data: msg.Data()}
			if id, ok := strings.CutPrefix(msg.Subject(), keySubjectPrefix); ok {
				r.KeyID = id
			}
			out = append(out, r)
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read checkpoints: %w", eventstore.Unavailable(err))
		}
		if len(out) > 0 && out[len(out)-1].Sequence >= last {
			return out, nil
		}
		if n == 0 {
			return nil, fmt.Errorf("read checkpoints: %w: stopped at %d of %d", errShortRead, len(out), last)
		}
	}
}

var errShortRead = errors.New("the checkpoint stream ended early")
