package eventstore

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iom-who/engagements/domain"
)

// Verify walks the whole stream and checks every event: that it decodes,
// that its hash matches its content, that it links to its engagement's
// previous event (prev_hash, version) and obeys the domain rules, that no
// stream sequence is missing, and that each attached document's bytes in
// DocumentBucket are those its event recorded (size and SHA-256). An event
// a document's bytes do not match is a problem; an object no event names is
// listed (Unattached, whole-stream runs only). progress, when not nil, is called now and
// then with the sequence reached and the last sequence.
func (s *Store) Verify(ctx context.Context, progress func(done, total uint64)) (domain.Report, error) {
	return s.VerifyUntil(ctx, 0, progress)
}

// VerifyUntil is Verify over the stream up to sequence until only (0: all),
// so the head an auditor noted at that sequence can be compared later.
func (s *Store) VerifyUntil(ctx context.Context, until uint64, progress func(done, total uint64)) (domain.Report, error) {
	return s.VerifyWalk(ctx, until, progress, nil)
}

// Visitor sees every message a verification reads, for checks beyond the
// chains (signed checkpoints) made in the same walk.
type Visitor interface {
	// Visit is called with each message in stream order, before it is
	// folded: before is the chains as they stand after the message's
	// predecessors.
	Visit(m domain.Message, before *Chains)
	// End is called once after the last message, with the last sequence
	// verified and the chains as they stand there.
	End(last uint64, chains *Chains)
}

// VerifyWalk is VerifyUntil that also shows every message it reads to v
// when v is not nil: whoever checks more than the chains reads the stream
// once.
func (s *Store) VerifyWalk(ctx context.Context, until uint64, progress func(done, total uint64), v Visitor) (domain.Report, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return domain.Report{}, fmt.Errorf("stream info: %w", Unavailable(err))
	}
	last := info.State.LastSeq
	if until > 0 && until < last {
		last = until
	}
	// The document events are gathered on the way: their bytes are checked
	// once the chains are.
	var docs []attached
	msgs := func(yield func(domain.Message, error) bool) {
		for m, err := range s.Read(ctx, 0, domain.Filter{}) {
			if err == nil && m.Err == nil && m.Sequence <= last && m.Event.Type == domain.EngagementDocumentAttached {
				if d, err := domain.DecodeData[domain.DocumentAttachedData](m.Event); err == nil {
					docs = append(docs, attached{m.Sequence, m.Event.EngagementID, d})
				}
			}
			if !yield(m, err) {
				return
			}
		}
	}
	rep, err := VerifyMessages(msgs, last, progress, v)
	if err != nil {
		return rep, err
	}
	for _, a := range docs {
		problem, err := s.documentProblem(ctx, a.data)
		if err != nil {
			return rep, err
		}
		rep.Documents++
		if problem != "" {
			rep.Problems = append(rep.Problems, domain.Problem{Sequence: a.seq, EngagementID: a.engagement,
				DocumentID: a.data.DocumentID, Problem: problem})
		}
	}
	if until == 0 {
		if rep.Unattached, err = s.unattached(ctx, docs); err != nil {
			return rep, err
		}
	}
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}

// VerifyMessages is the check Verify makes, over msgs (stored messages in
// stream order, as Store.Read yields them) up to sequence last: every
// sequence from 1 to last must hold a message that decodes, matches its
// hash and continues its engagement. An exported bundle is checked with it
// too, with no store.
func VerifyMessages(msgs iter.Seq2[domain.Message, error], last uint64, progress func(done, total uint64), v Visitor) (domain.Report, error) {
	rep := domain.Report{LastSequence: last, Problems: []domain.Problem{}}
	missing := func(from, to uint64) {
		rep.Problems = append(rep.Problems, domain.Problem{Sequence: from,
			Problem: fmt.Sprintf("messages %d to %d are missing from the stream (deleted or purged)", from, to)})
	}
	chains := NewChains()
	next := uint64(1)
	for m, err := range msgs {
		if err != nil {
			return rep, err
		}
		seq := m.Sequence
		if seq > last {
			break
		}
		if seq < next {
			return rep, fmt.Errorf("message %d after %d: %w", seq, next-1, errOutOfOrder)
		}
		if seq > next {
			missing(next, seq-1)
		}
		next = seq + 1
		rep.Events++
		if progress != nil && seq%1000 == 0 {
			progress(seq, last)
		}
		if v != nil {
			v.Visit(m, chains)
		}
		if problem := chains.Fold(m); problem != "" {
			rep.Problems = append(rep.Problems, domain.Problem{Sequence: seq, EngagementID: m.Event.EngagementID, Problem: problem})
		}
	}
	if next <= last {
		missing(next, last)
	}
	if progress != nil {
		progress(last, last)
	}
	if v != nil {
		v.End(last, chains)
	}
	rep.Engagements = chains.Len()
	rep.Head = chains.Head()
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}

// errOutOfOrder says messages were not in stream order.
var errOutOfOrder = errors.New("messages out of stream order")

// unattached lists the bucket's objects that none of the events docs names.
func (s *Store) unattached(ctx context.Context, docs []attached) ([]domain.UnattachedDocument, error) {
	if s.docs == nil {
		return nil, nil
	}
	list, err := s.docs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", DocumentBucket, Unavailable(err))
	}
	named := make(map[string]bool, len(docs))
	for _, a := range docs {
		named[a.data.DocumentID] = true
	}
	var out []domain.UnattachedDocument
	for _, o := range list {
		if named[o.Name] {
			continue
		}
		u := domain.UnattachedDocument{DocumentID: o.Name, StoredAt: o.ModTime}
		if e := o.Headers.Get("Engagements-Engagement-Id"); domain.CheckID(e) == nil {
			u.EngagementID = e // what the object says, named only when it is an id
		}
		out = append(out, u)
	}
	return out, nil
}

// attached is a document_attached event Verify checks the bytes of.
type attached struct {
	seq        uint64
	engagement string
	data       domain.DocumentAttachedData
}
