package app

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"time"

	"github.com/iom-who/engagements/domain"
)

// Keyring is what the command path needs of the data subjects' keys;
// eventstore.Keyring is one.
type Keyring interface {
	Sealer
	// Person tells what is known of subject id (domain.ErrNotFound if
	// nothing was ever sealed for it).
	Person(ctx context.Context, id string) (domain.Person, error)
	// Erase destroys subject id's key (domain.ErrConflict if it is gone
	// already).
	Erase(ctx context.Context, id, actor string, at time.Time) (domain.Person, error)
	// PersonID is the id of the subject a name or e-mail identifies.
	PersonID(ctx context.Context, s string) (string, error)
}

// Person tells what is known of data subject id; domain.ErrNotFound for
// one never seen (or without a keyring).
func (s *Service) Person(ctx context.Context, id string) (domain.Person, error) {
	if s.people == nil {
		return domain.Person{}, fmt.Errorf("person %s: %w", id, domain.ErrNotFound)
	}
	return s.people.Person(ctx, id)
}

// FindPerson is Person for the subject identified by who: an e-mail, or a
// name when the records hold no e-mail for the person (see
// eventstore.Keyring.SealEvent).
func (s *Service) FindPerson(ctx context.Context, who string) (domain.Person, error) {
	if s.people == nil {
		return domain.Person{}, fmt.Errorf("person: %w", domain.ErrNotFound)
	}
	id, err := s.people.PersonID(ctx, who)
	if err != nil {
		return domain.Person{}, err
	}
	return s.people.Person(ctx, id)
}

// Walker reads the whole stream, each event opened; eventstore.Store is one.
type Walker interface {
	Read(ctx context.Context, after uint64, f domain.Filter) iter.Seq2[domain.Message, error]
}

// UseKeyring makes every append seal its personal fields with k, so that
// the stream (and the hash chain over it) holds them only as ciphertext,
// and lets Erase destroy a subject's key; stream is read to find the
// engagements an erasure concerns.
func (s *Service) UseKeyring(k Keyring, stream Walker) { s.keys, s.people, s.stream = k, k, stream }

// Erasure is what erasing a data subject did.
type Erasure struct {
	Person domain.Person
	// Engagements are the engagement.personal_data_erased events recorded,
	// one per engagement concerned (more for one with many events).
	Engagements []Result
}

// Erase destroys data subject id's key, so that every field sealed with it
// reads domain.Erased, and records engagement.personal_data_erased, which
// holds no personal data, on each engagement whose events name the
// subject, with actor as the event's actor. It reads the whole stream to
// find them. domain.ErrNotFound for a subject never seen; domain.ErrConflict
// when the key is already erased and every engagement concerned has its
// record (an erasure cut short, the key gone but a record missing, is
// completed by erasing again).
func (s *Service) Erase(ctx context.Context, id, actor string) (Erasure, error) {
	if s.people == nil || s.stream == nil {
		return Erasure{}, fmt.Errorf("person %s: %w", id, domain.ErrNotFound)
	}
	p, err := s.people.Person(ctx, id)
	if err != nil {
		return Erasure{}, err
	}
	concerned, err := s.mentions(ctx, id, p.KeyVersion, p.Erased)
	if err != nil {
		return Erasure{}, err
	}
	if !p.Erased {
		if p, err = s.people.Erase(ctx, id, actor, s.now()); err != nil {
			return Erasure{}, err
		}
	} else if len(concerned) == 0 {
		return Erasure{}, fmt.Errorf("person %s: already erased: %w", id, domain.ErrConflict)
	}
	out := Erasure{Person: p}
	for _, m := range concerned {
		for part, events := range chunks(m.events, domain.MaxListEntries) {
			fields := slices.Compact(slices.Sorted(func(yield func(string) bool) {
				for _, f := range m.fields {
					if !yield(f) {
						return
					}
				}
			}))
			data, err := json.Marshal(domain.PersonalDataErasedData{PersonID: id, KeyVersion: p.KeyVersion,
				Fields: fields[:min(len(fields), domain.MaxListEntries)], Events: events})
			if err != nil {
				return out, err
			}
			r, err := s.Execute(ctx, Command{EngagementID: m.engagement, Type: domain.EngagementPersonalDataErased,
				Data: data, Actor: actor, erasing: true,
				IdempotencyKey: "erase-" + id + "-" + strconv.Itoa(p.KeyVersion) + "-" + strconv.Itoa(part)})
			if err != nil {
				return out, fmt.Errorf("record the erasure of person %s on engagement %s: %w", id, m.engagement, err)
			}
			out.Engagements = append(out.Engagements, r)
		}
	}
	return out, nil
}

// mention is one engagement whose events name a data subject.
type mention struct {
	engagement string
	fields     []string // "<type> <field>"
	events     []string
}

// mentions reads the stream for the engagements whose events hold fields
// sealed for subject id that no erasure of key version (or a later one)
// was recorded for, in stream order; fields already erased count only
// with erased set (completing an erasure of the current key).
func (s *Service) mentions(ctx context.Context, id string, version int, erased bool) ([]mention, error) {
	var order []string
	byID := make(map[string]*mention)
	recorded := make(map[string]bool)
	for m, err := range s.stream.Read(ctx, 0, domain.Filter{}) {
		if err != nil {
			return nil, fmt.Errorf("find the engagements of person %s: %w", id, err)
		}
		if m.Err != nil {
			continue
		}
		ev := m.Event
		if ev.Type == domain.EngagementPersonalDataErased {
			var d domain.PersonalDataErasedData
			if json.Unmarshal(ev.Data, &d) == nil && d.PersonID == id && d.KeyVersion >= version {
				recorded[ev.EngagementID] = true
			}
			continue
		}
		for _, f := range ev.Personal {
			if f.PersonID != id || f.Erased && !erased { // erased before, with an earlier key
				continue
			}
			mt := byID[ev.EngagementID]
			if mt == nil {
				mt = &mention{engagement: ev.EngagementID}
				byID[ev.EngagementID] = mt
				order = append(order, ev.EngagementID)
			}
			mt.fields = append(mt.fields, string(ev.Type)+" "+f.Field)
			if !slices.Contains(mt.events, ev.ID) {
				mt.events = append(mt.events, ev.ID)
			}
		}
	}
	var out []mention
	for _, e := range order {
		if !recorded[e] {
			out = append(out, *byID[e])
		}
	}
	return out, nil
}

// chunks yields list in parts of at most n, numbered from 0.
func chunks(list []string, n int) iter.Seq2[int, []string] {
	return func(yield func(int, []string) bool) {
		for i := 0; i*n < len(list); i++ {
			if !yield(i, list[i*n:min((i+1)*n, len(list))]) {
				return
			}
		}
	}
}
