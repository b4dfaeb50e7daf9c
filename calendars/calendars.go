// Package calendars is private calendar feeds: a reader of the engagements
// (a coordinator, typically) makes a secret URL ending in .ics that a
// calendar app subscribes to, since calendar apps cannot send an
// Authorization header. The URL serves the open dated items of the
// engagements (expiries, notice deadlines, action due dates, meetings) as
// iCalendar, built with github.com/arran4/golang-ical.
//
// It is a package of its own because a feed is a credential of a new kind,
// not an event and not an API token: the feeds live in a JetStream KV
// bucket of their own (only the SHA-256 of each secret is kept, as the
// token store keeps tokens), on the store's connection. It imports domain
// and eventstore.
package calendars

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the JetStream KV bucket of calendar feeds.
const Bucket = "ENGAGEMENTS_CALENDARS"

// Limits on feeds.
const (
	// MaxPerOwner is how many feeds one token may hold.
	MaxPerOwner = 20
	// MaxFeeds is how many feeds the service holds in all.
	MaxFeeds = 10_000
	// MaxNameLength is the longest feed name, in characters.
	MaxNameLength = 100
	// MaxPartyLength is the longest party filter, in characters.
	MaxPartyLength = 200
	// MaxWithinDays is the largest "within".
	MaxWithinDays = 36_500
	// DefaultName names a feed created without a name.
	DefaultName = "Engagements"
)

// ErrTooMany means the owner (or the service) holds as many feeds as allowed.
var ErrTooMany = errors.New("too many calendar feeds")

// idBytes and randomBytes make up a secret: the feed's id (a UUID, so the
// feed is found without comparing against every digest) and 256 random
// bits, encoded together as unpadded base64url.
const (
	idBytes     = 16
	randomBytes = 32
	// SecretLength is the length of an encoded secret.
	SecretLength = (idBytes + randomBytes) * 4 / 3
)

// Filter narrows a feed to some engagements and a horizon. The zero value
// is every open dated item.
type Filter struct {
	// Kind is an engagement kind ("" for all).
	Kind domain.Kind `json:"kind,omitempty"`
	// Party is one of an engagement's parties, case-insensitive ("" for all).
	Party string `json:"party,omitempty"`
	// WithinDays, when positive, leaves out items more than that many days
	// ahead (overdue items are always in).
	WithinDays int `json:"within_days,omitempty"`
}

// Feed is a calendar feed as listed: never its secret.
type Feed struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	Filter    Filter    `json:"filter"`
	CreatedAt time.Time `json:"created_at"`
}

// stored is a feed as kept in KV: with the SHA-256 of its secret.
type stored struct {
	Feed
	Hash string `json:"sha256"`
}

// Request is what a new feed is made from: every field is optional.
type Request struct {
	Name   string
	Kind   string
	Party  string
	Within string // "<days>d"
}

var withinPattern = regexp.MustCompile(`^[0-9]{1,6}d$`)

// ParseWithin reads a horizon written as whole days, "90d".
func ParseWithin(s string) (int, error) {
	if !withinPattern.MatchString(s) {
		return 0, errors.New(`must be a whole number of days followed by "d", e.g. 90d`)
	}
	n, _ := strconv.Atoi(strings.TrimSuffix(s, "d"))
	if n < 1 || n > MaxWithinDays {
		return 0, fmt.Errorf("must be from 1d to %dd", MaxWithinDays)
	}
	return n, nil
}

// FormatWithin writes days as ParseWithin reads them ("" for 0).
func FormatWithin(days int) string {
	if days <= 0 {
		return ""
	}
	return strconv.Itoa(days) + "d"
}

// Check validates r and returns the feed's name and filter, or a
// *domain.ValidationError naming each field that is wrong.
func (r Request) Check() (string, Filter, error) {
	var errs []domain.FieldError
	name := strings.TrimSpace(r.Name)
	if name == "" {
		name = DefaultName
	}
	if n := utf8.RuneCountInString(name); !utf8.ValidString(name) || n > MaxNameLength || hasControl(name) {
		errs = append(errs, domain.FieldError{Field: "name",
			Message: fmt.Sprintf("must be at most %d characters, without control characters", MaxNameLength)})
	}
	var f Filter
	if r.Kind != "" {
		if k := domain.Kind(r.Kind); k.Valid() {
			f.Kind = k
		} else {
			errs = append(errs, domain.FieldError{Field: "kind", Message: "must be agreement, policy, initiative or meeting"})
		}
	}
	f.Party = strings.TrimSpace(r.Party)
	if n := utf8.RuneCountInString(f.Party); !utf8.ValidString(f.Party) || n > MaxPartyLength || hasControl(f.Party) {
		errs = append(errs, domain.FieldError{Field: "party",
			Message: fmt.Sprintf("must be at most %d characters, without control characters", MaxPartyLength)})
	}
	if r.Within != "" {
		days, err := ParseWithin(r.Within)
		if err != nil {
			errs = append(errs, domain.FieldError{Field: "within", Message: err.Error()})
		}
		f.WithinDays = days
	}
	if len(errs) > 0 {
		return "", Filter{}, &domain.ValidationError{Fields: errs}
	}
	return name, f, nil
}

func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }

// Store keeps the feeds in a KV bucket shared by every instance. Each
// lookup reads the bucket, so a revocation on any instance takes effect
// on every instance at once.
type Store struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// Config tunes the store. The zero value is usable.
type Config struct {
	// Replicas of the bucket; 0 means 1.
	Replicas int
}

// Open opens (creating if needed) the feed bucket on js.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	kv, err := eventstore.Provision(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: Bucket, Description: "Calendar feeds (SHA-256 of the secrets only)", History: 1,
			Storage: jetstream.FileStorage, Replicas: max(cfg.Replicas, 1),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("calendar bucket: %w", eventstore.Unavailable(err))
	}
	return &Store{kv: kv, now: time.Now}, nil
}

// Create makes a feed for owner and returns its secret, which is kept
// nowhere: only its SHA-256 is stored. It returns once the bucket has
// stored the feed.
func (s *Store) Create(ctx context.Context, owner string, r Request) (string, Feed, error) {
	name, filter, err := r.Check()
	if err != nil {
		return "", Feed{}, err
	}
	all, err := s.List(ctx, "")
	if err != nil {
		return "", Feed{}, err
	}
	mine := 0
	for _, f := range all {
		if f.Owner == owner {
			mine++
		}
	}
	if mine >= MaxPerOwner || len(all) >= MaxFeeds {
		return "", Feed{}, ErrTooMany
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", Feed{}, fmt.Errorf("feed id: %w", err)
	}
	raw := make([]byte, idBytes+randomBytes)
	copy(raw, id[:])
	if _, err := rand.Read(raw[idBytes:]); err != nil {
		return "", Feed{}, fmt.Errorf("random secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	st := stored{Feed: Feed{ID: id.String(), Name: name, Owner: owner, Filter: filter,
		CreatedAt: s.now().UTC()}, Hash: digest(secret)}
	b, err := json.Marshal(st)
	if err != nil {
		return "", Feed{}, err
	}
	if _, err := s.kv.Create(ctx, st.ID, b); err != nil {
		return "", Feed{}, fmt.Errorf("store calendar feed: %w", eventstore.Unavailable(err))
	}
	return secret, st.Feed, nil
}

// List returns owner's feeds, or every feed when owner is "", oldest first.
func (s *Store) List(ctx context.Context, owner string) ([]Feed, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list calendar feeds: %w", eventstore.Unavailable(err))
	}
	defer func() { _ = w.Stop() }()
	var out []Feed
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list calendar feeds: %w", ctx.Err())
		case u, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("list calendar feeds: %w", domain.ErrUnavailable)
			}
			if u == nil { // every current value has come
				slices.SortFunc(out, func(a, b Feed) int { return strings.Compare(a.ID, b.ID) })
				return out, nil
			}
			var st stored
			if json.Unmarshal(u.Value(), &st) != nil || owner != "" && st.Owner != owner {
				continue
			}
			out = append(out, st.Feed)
		}
	}
}

// Get returns the feed with id; domain.ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, id string) (Feed, error) {
	st, err := s.get(ctx, id)
	return st.Feed, err
}

func (s *Store) get(ctx context.Context, id string) (stored, error) {
	if err := domain.CheckID(id); err != nil {
		return stored{}, err
	}
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return stored{}, fmt.Errorf("calendar feed %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return stored{}, fmt.Errorf("read calendar feed: %w", eventstore.Unavailable(err))
	}
	var st stored
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return stored{}, fmt.Errorf("calendar feed %s: %w", id, err)
	}
	return st, nil
}

// Revoke deletes the feed with id: its URL answers 404 from then on, on
// every instance. domain.ErrNotFound when there is no such feed.
func (s *Store) Revoke(ctx context.Context, id string) error {
	if _, err := s.get(ctx, id); err != nil {
		return err
	}
	if err := s.kv.Delete(ctx, id); err != nil {
		return fmt.Errorf("revoke calendar feed: %w", eventstore.Unavailable(err))
	}
	return nil
}

// Lookup finds the feed a secret opens. A string that is not a secret, or
// the secret of no feed (never made, or revoked), is not found (ok false,
// err nil); err is set only when the bucket cannot be read. The secret's
// digest is compared with the stored one in constant time.
func (s *Store) Lookup(ctx context.Context, secret string) (feed Feed, ok bool, err error) {
	if len(secret) != SecretLength {
		return Feed{}, false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(raw) != idBytes+randomBytes {
		return Feed{}, false, nil
	}
	id, err := uuid.FromBytes(raw[:idBytes])
	if err != nil {
		return Feed{}, false, nil
	}
	st, err := s.get(ctx, id.String())
	if errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrInvalidID) {
		return Feed{}, false, nil
	}
	if err != nil {
		return Feed{}, false, err
	}
	if subtle.ConstantTimeCompare([]byte(digest(secret)), []byte(st.Hash)) != 1 {
		return Feed{}, false, nil
	}
	return st.Feed, true, nil
}

func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return base64.RawStdEncoding.EncodeToString(sum[:])
}

// BaseURL is the scheme and host a request was sent to (https when the
// connection is TLS), for when the service has no public URL set;
// forwarded headers are not trusted.
func BaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Path is where a secret's feed is served, relative to the service's base
// URL.
func Path(secret string) string { return "/calendars/" + secret + ".ics" }

// RedactPath replaces the secret in a feed's path, for logs: the path of a
// feed is a credential. Anything after "/calendars/" is replaced, wherever
// it stands, except in the API's /v1/calendars/{id} with a valid id (an id
// is no secret).
func RedactPath(p string) string {
	i := strings.Index(p, "/calendars/")
	if i < 0 {
		return p
	}
	if id, ok := strings.CutPrefix(p, "/v1/calendars/"); ok && domain.CheckID(id) == nil {
		return p
	}
	return p[:i] + "/calendars/[redacted]"
}
