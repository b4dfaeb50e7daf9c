package projections

import (
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/iom-who/engagements/domain"
)

// sequences is the read model of where each engagement's messages sit in
// the stream: the sequences of its folded events (its history, fetched
// from the stream when asked) and of its latest message (the expected
// sequence of its next append), with the messages the rules refused and
// the corrections of each event, which history and the log show.
type sequences struct {
	last    map[string]uint64   // engagement id → sequence of its latest message
	history map[string][]uint64 // engagement id → sequences of its folded events
	// rejected are the decodable messages the rules refused: the global
	// log, read from the stream, leaves them out (there are few).
	rejected map[uint64]struct{}
	// correctedBy maps an event id to the ids of the corrections of it.
	correctedBy map[string][]string
}

func newSequences() sequences {
	return sequences{last: make(map[string]uint64), history: make(map[string][]uint64),
		rejected: make(map[uint64]struct{}), correctedBy: make(map[string][]string)}
}

// touch records that the message at seq names engagement id, folded or not.
func (s *sequences) touch(seq uint64, id string) {
	if domain.CheckID(id) == nil {
		s.last[id] = seq
	}
}

// reject records that the rules refused the message at seq.
func (s *sequences) reject(seq uint64) { s.rejected[seq] = struct{}{} }

// Apply records ev, folded at seq, in its engagement's history.
func (s *sequences) Apply(seq uint64, ev domain.Event) {
	s.history[ev.EngagementID] = append(s.history[ev.EngagementID], seq)
	if ev.Type == domain.EngagementCorrected {
		s.markCorrected(ev)
	}
}

// markCorrected notes the correction's id against the corrected event, so
// history shows the two side by side.
func (s *sequences) markCorrected(correction domain.Event) {
	d, err := domain.DecodeData[domain.CorrectedData](correction)
	if err != nil {
		return
	}
	s.correctedBy[d.Corrects] = append(s.correctedBy[d.Corrects], correction.ID)
}

// savedSequences are the sequences of some engagements in the checkpoint:
// their ids are one string (ends[i] is where id i ends), so that decoding
// them is one allocation, not one per engagement.
type savedSequences struct {
	IDs     string
	Ends    []uint32
	Last    []uint64
	History [][]uint64
}

// each calls fn with each engagement's sequences; the ids share one string.
func (s *savedSequences) each(fn func(id string, last uint64, history []uint64)) error {
	if len(s.Last) != len(s.Ends) || len(s.History) != len(s.Ends) {
		return errors.New("sequences of unequal length")
	}
	start := uint32(0)
	for i, end := range s.Ends {
		if end < start || int(end) > len(s.IDs) {
			return errors.New("id out of bounds")
		}
		fn(s.IDs[start:end], s.Last[i], s.History[i])
		start = end
	}
	return nil
}

// savedRefusals is the first part of the sequences section.
type savedRefusals struct {
	Rejected    []uint64
	CorrectedBy map[string][]string
}

// save takes the sequences: Apply only appends to the slices, beyond the
// length taken here, never within it.
func (s *sequences) save() saving {
	first := savedRefusals{Rejected: slices.Collect(maps.Keys(s.rejected)),
		CorrectedBy: make(map[string][]string, len(s.correctedBy))}
	for id, c := range s.correctedBy {
		first.CorrectedBy[id] = slices.Clip(c)
	}
	type one struct {
		id      string
		last    uint64
		history []uint64
	}
	entries := make([]one, 0, len(s.last))
	for id, last := range s.last {
		entries = append(entries, one{id, last, slices.Clip(s.history[id])})
	}
	for id, h := range s.history {
		if _, ok := s.last[id]; !ok {
			entries = append(entries, one{id: id, history: slices.Clip(h)})
		}
	}
	return saving{parts: 1 + chunks(len(entries)), part: func(i int) any {
		if i == 0 {
			return first
		}
		start, end := chunk(i-1, len(entries))
		var part savedSequences
		var ids strings.Builder
		for _, e := range entries[start:end] {
			ids.WriteString(e.id)
			part.Ends = append(part.Ends, uint32(ids.Len()))
			part.Last = append(part.Last, e.last)
			part.History = append(part.History, e.history)
		}
		part.IDs = ids.String()
		return part
	}}
}

func (s *sequences) load(n int) (loader, error) {
	if n < 1 {
		return nil, errors.New("no part of refusals")
	}
	return &sequencesLoader{s: s, parts: make([]savedSequences, n-1)}, nil
}

type sequencesLoader struct {
	s     *sequences
	first savedRefusals
	parts []savedSequences
}

func (l *sequencesLoader) decode(i int, b []byte) error {
	if i == 0 {
		return decodePart(b, &l.first)
	}
	if err := decodePart(b, &l.parts[i-1]); err != nil {
		return err
	}
	return l.parts[i-1].each(func(string, uint64, []uint64) {})
}

func (l *sequencesLoader) restore(uint64) {
	n := 0
	for _, part := range l.parts {
		n += len(part.Ends)
	}
	s := sequences{last: make(map[string]uint64, n), history: make(map[string][]uint64, n),
		rejected: make(map[uint64]struct{}, len(l.first.Rejected)), correctedBy: l.first.CorrectedBy}
	if s.correctedBy == nil {
		s.correctedBy = make(map[string][]string)
	}
	for _, seq := range l.first.Rejected {
		s.rejected[seq] = struct{}{}
	}
	for _, part := range l.parts {
		_ = part.each(func(id string, last uint64, history []uint64) { // checked when decoded
			if last > 0 {
				s.last[id] = last
			}
			if len(history) > 0 {
				s.history[id] = history
			}
		})
	}
	*l.s = s
}
