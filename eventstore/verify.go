package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go/jetstream"
)

// Verify walks the whole stream and checks every event: that it decodes,
// that its hash matches its content, that it links to its engagement's
// previous event (prev_hash, version) and obeys the domain rules, that no
// stream sequence is missing, and that each attached document's bytes in
// DocumentBucket are those its event recorded (size and SHA-256). progress, when not nil, is called now and
// then with the sequence reached and the last sequence.
func (s *Store) Verify(ctx context.Context, progress func(done, total uint64)) (domain.Report, error) {
	return s.VerifyUntil(ctx, 0, progress)
}

// VerifyUntil is Verify over the stream up to sequence until only (0: all),
// so the head an auditor noted at that sequence can be compared later.
func (s *Store) VerifyUntil(ctx context.Context, until uint64, progress func(done, total uint64)) (domain.Report, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return domain.Report{}, fmt.Errorf("stream info: %w", Unavailable(err))
	}
	last, first := info.State.LastSeq, info.State.FirstSeq
	if until > 0 && until < last {
		last = until
	}
	rep := domain.Report{LastSequence: last, Problems: []domain.Problem{}}
	missing := func(from, to uint64) {
		rep.Problems = append(rep.Problems, domain.Problem{Sequence: from,
			Problem: fmt.Sprintf("messages %d to %d are missing from the stream (deleted or purged)", from, to)})
	}
	if info.State.Msgs == 0 || first > last {
		first = last + 1
	}
	if first > 1 {
		missing(1, first-1)
	}
	states := make(map[string]*domain.Engagement)
	var docs []attached
	next := first
	for m, err := range s.Read(ctx, 0, domain.Filter{}) {
		if err != nil {
			return rep, err
		}
		seq, ev := m.Sequence, m.Event
		if seq > last {
			break
		}
		if seq > next {
			missing(next, seq-1)
		}
		next = seq + 1
		rep.Events++
		if progress != nil && seq%1000 == 0 {
			progress(seq, last)
		}
		if m.Err != nil {
			rep.Problems = append(rep.Problems, domain.Problem{Sequence: seq, EngagementID: ev.EngagementID, Problem: m.Err.Error()})
			continue
		}
		e, ok := states[ev.EngagementID]
		if !ok {
			e = &domain.Engagement{}
		}
		if err := e.Apply(ev); err != nil {
			rep.Problems = append(rep.Problems, domain.Problem{Sequence: seq, EngagementID: ev.EngagementID,
				Problem: "does not continue its engagement: " + err.Error()})
			continue
		}
		states[ev.EngagementID] = e
		if ev.Type == domain.EngagementDocumentAttached {
			if d, err := domain.DecodeData[domain.DocumentAttachedData](ev); err == nil {
				docs = append(docs, attached{seq, ev.EngagementID, d})
			}
		}
	}
	if next <= last {
		missing(next, last)
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
	if progress != nil {
		progress(last, last)
	}
	rep.Engagements = len(states)
	rep.Head = head(states)
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}

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

// head digests every chain head: SHA-256 over the lines
// "<engagement id> <hash of its latest valid event>\n", sorted by id.
func head(states map[string]*domain.Engagement) string {
	ids := make([]string, 0, len(states))
	for id := range states {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		fmt.Fprintf(h, "%s %s\n", id, states[id].Hash())
	}
	return hex.EncodeToString(h.Sum(nil))
}
