package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// eventsChunk is how many direct gets Events has in flight at once: each
// chunk is one subscription, its requests published back to back and its
// replies gathered as they come.
const eventsChunk = 512

// eventsTimeout bounds Events when ctx has no deadline, as the client's
// default API timeout bounds Event.
const eventsTimeout = 10 * time.Second

// Events reads the events stored at seqs, in that order, as Event does,
// but pipelined: the direct gets of up to eventsChunk sequences are sent
// back to back on one reply subscription and their replies gathered in any
// order, instead of one request and its reply at a time. A portfolio page
// within a window reads a few hundred events scattered over the stream;
// one at a time, each round trip through the NATS connection (and its
// lock, shared with every other use of the connection) made the page's
// latency the sum of hundreds of scheduling waits. A sequence with no
// message wraps domain.ErrNotFound; a message that does not decode or
// fails its hash check is an error, as with Event.
func (s *Store) Events(ctx context.Context, seqs []uint64) ([]domain.Event, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, eventsTimeout)
		defer cancel()
	}
	out := make([]domain.Event, len(seqs))
	if s.readNC == nil || !s.readNC.IsConnected() || len(seqs) < 2*minSplit {
		if err := s.eventsOn(ctx, s.nc, seqs, out); err != nil {
			return nil, err
		}
		return out, nil
	}
	// Half on each connection (Store.readNC), at once.
	half := len(seqs) / 2
	var g errgroup.Group
	g.Go(func() error { return s.eventsOn(ctx, s.nc, seqs[:half], out[:half]) })
	g.Go(func() error { return s.eventsOn(ctx, s.readNC, seqs[half:], out[half:]) })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// eventsOn fills out[i] with the event at seqs[i] through nc, eventsChunk
// sequences at a time.
func (s *Store) eventsOn(ctx context.Context, nc *nats.Conn, seqs []uint64, out []domain.Event) error {
	for start := 0; start < len(seqs); start += eventsChunk {
		end := min(start+eventsChunk, len(seqs))
		if err := s.eventsChunk(ctx, nc, seqs[start:end], out[start:end]); err != nil {
			return err
		}
	}
	return nil
}

// minSplit is the fewest direct gets worth a connection of their own.
const minSplit = 32

// eventsChunk fills out[i] with the event at seqs[i].
func (s *Store) eventsChunk(ctx context.Context, nc *nats.Conn, seqs []uint64, out []domain.Event) error {
	if len(seqs) == 0 {
		return nil
	}
	inbox := nc.NewInbox()
	replies := make(chan *nats.Msg, len(seqs))
	sub, err := nc.ChanSubscribe(inbox+".*", replies)
	if err != nil {
		return fmt.Errorf("events: %w", Unavailable(err))
	}
	defer func() { _ = sub.Unsubscribe() }()
	api := s.js.Options().APIPrefix
	if api == "" {
		api = jetstream.DefaultAPIPrefix
	}
	subject := api + "DIRECT.GET." + StreamName
	var body []byte
	for i, seq := range seqs {
		if seq == 0 {
			return fmt.Errorf("event at sequence 0: %w", domain.ErrNotFound)
		}
		body = strconv.AppendUint(append(body[:0], `{"seq":`...), seq, 10)
		body = append(body, '}')
		if err := nc.PublishRequest(subject, inbox+"."+strconv.Itoa(i), body); err != nil {
			return fmt.Errorf("events: direct get of sequence %d: %w", seq, Unavailable(err))
		}
	}
	done := make([]bool, len(seqs))
	for range seqs {
		var msg *nats.Msg
		select {
		case msg = <-replies:
		case <-ctx.Done():
			return fmt.Errorf("events: %w", Unavailable(ctx.Err()))
		}
		i, err := strconv.Atoi(msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:])
		if err != nil || i < 0 || i >= len(seqs) || done[i] {
			return fmt.Errorf("events: a reply on %q answers no request of this read", msg.Subject)
		}
		done[i] = true
		if out[i], err = directReply(msg, seqs[i]); err != nil {
			return err
		}
		if err := s.openEvent(ctx, &out[i]); err != nil {
			return fmt.Errorf("open personal fields at sequence %d: %w", seqs[i], err)
		}
	}
	return nil
}

// directReply decodes a direct get's reply for the message at seq.
func directReply(msg *nats.Msg, seq uint64) (domain.Event, error) {
	if len(msg.Data) == 0 && msg.Header.Get("Status") != "" {
		status, desc := msg.Header.Get("Status"), msg.Header.Get("Description")
		if status == "404" {
			return domain.Event{}, fmt.Errorf("event at sequence %d: %w", seq, domain.ErrNotFound)
		}
		return domain.Event{}, fmt.Errorf("event at sequence %d: %w", seq,
			Unavailable(fmt.Errorf("direct get: status %s %s", status, desc)))
	}
	subject := msg.Header.Get(jetstream.SubjectHeader)
	got, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil || got != seq || subject == "" {
		return domain.Event{}, fmt.Errorf("event at sequence %d: %w", seq,
			errors.New("direct get: a reply without its subject or of another sequence"))
	}
	return decodeMsg(subject, msg.Header, msg.Data, seq)
}

// openEvent opens ev's sealed personal fields with the store's keyring,
// when it has one.
func (s *Store) openEvent(ctx context.Context, ev *domain.Event) error {
	if s.keys == nil {
		return nil
	}
	return s.keys.OpenEvent(ctx, ev)
}
