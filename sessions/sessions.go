// Package sessions keeps the web UI's sign-in sessions in a JetStream KV
// bucket, so every instance serves every session and a restart signs no one
// out. It is a package of its own, not part of webui or tokens, because it
// is state beside the stream (like tokens and calendars): it only shares
// the store's NATS connection. It imports domain and eventstore.
//
// A session is stored under the SHA-256 of its id, never the id itself;
// what only its holder needs (the token's digest, the CSRF token, the
// messages for the next page) is sealed with AES-GCM under a key derived
// from the id, so reading the bucket neither signs anyone in nor shows what
// a session holds. Only the identity (a token's name, as events record it)
// and the times are in the clear: every instance counts sessions from them
// (see Store.Start).
package sessions

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the JetStream KV bucket of web sessions.
const Bucket = "ENGAGEMENTS_SESSIONS"

// Session lifetimes, and how often a session's last use is written back.
const (
	// Life bounds a session from sign-in; it is also the bucket's TTL, so
	// an entry not written for that long is gone.
	Life = 12 * time.Hour
	// Idle bounds a session from its last use (to within TouchEvery).
	Idle = 2 * time.Hour
	// TouchEvery: a session's last use is written back at most this often,
	// so reading a page costs a KV read, not a write.
	TouchEvery = time.Minute
	// MaxValue is the largest entry the bucket takes.
	MaxValue = 16 << 10
	// idLen is the length of a session id (256 bits, base64url).
	idLen = 43
)

// ErrNotFound: no live session has this id (never had, signed out,
// evicted or expired).
var ErrNotFound = fmt.Errorf("session: %w", domain.ErrNotFound)

// errTooLarge: what a session is to hold exceeds MaxValue.
var errTooLarge = errors.New("session too large")

// Session is an open session as the one holding its id sees it.
type Session struct {
	// ID is the secret the cookie carries; the bucket never holds it.
	ID string
	// Identity is the token's name at sign-in: sessions are counted and
	// evicted per identity.
	Identity string
	// Token is the digest of the token signed in with (tokens.Digest), so
	// every request can ask the token store again.
	Token string
	// CSRF is the session's token for forms.
	CSRF string
	// Flash is a message for the next page; Pending holds other values for
	// the next page only, by name.
	Flash   string
	Pending map[string]json.RawMessage
	// Created and LastUsed are when it was opened and last used (LastUsed
	// to within TouchEvery).
	Created, LastUsed time.Time
	// Person is set for a session signed in through the directory
	// (OpenID Connect), whose Token is then "".
	Person *Person

	rev uint64
}

// Person is what a directory session keeps of who signed in (sealed, like
// the token's digest): the provider's words for them, their role as last
// checked, and the tokens to check it again and to sign out there.
type Person struct {
	Issuer  string      `json:"iss"`
	Subject string      `json:"sub"`
	Role    domain.Role `json:"role"`
	// IDToken is the hint for signing out at the provider; RefreshToken
	// asks the provider again ("" when it gave none).
	IDToken      string `json:"id_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// Checked is when the provider last vouched for the role; Expiry when
	// the ID token it vouched with expires.
	Checked time.Time `json:"checked"`
	Expiry  time.Time `json:"expiry"`
}

// stored is an entry of the bucket: the times and identity in the clear,
// the rest sealed.
type stored struct {
	Identity string    `json:"identity"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"`
	Sealed   []byte    `json:"sealed"`
}

// secret is the sealed part of an entry.
type secret struct {
	Token   string                     `json:"token_sha256"`
	CSRF    string                     `json:"csrf"`
	Flash   string                     `json:"flash,omitempty"`
	Pending map[string]json.RawMessage `json:"pending,omitempty"`
	Person  *Person                    `json:"person,omitempty"`
}

// meta is what every instance keeps of every session, from the watch, to
// count and evict.
type meta struct {
	identity          string
	created, lastUsed time.Time
}

func (m meta) expired(now time.Time) bool {
	return now.Sub(m.created) > Life || now.Sub(m.lastUsed) > Idle
}

// Limits cap open sessions: PerIdentity for one identity, Total in all.
type Limits struct{ PerIdentity, Total int }

// Store keeps sessions in the bucket, and an index of every session's
// identity and times that a watch of the bucket keeps current (for the
// limits only: a session itself is always read from the bucket).
type Store struct {
	kv       jetstream.KeyValue
	attempts jetstream.KeyValue
	conn     *nats.Conn
	log      *slog.Logger

	mu    sync.Mutex
	index map[string]meta // by key

	cancel context.CancelFunc
	done   chan struct{}
}

// Config tunes the store. The zero value is usable.
type Config struct {
	// Replicas of the bucket; 0 means 1.
	Replicas int
	// Logger receives watch troubles; nil discards them.
	Logger *slog.Logger
}

// Open opens (creating if needed) the session bucket on js and starts
// watching it. Call Close before closing the connection.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "Web sessions (under the SHA-256 of their ids; sealed)", History: 1,
		TTL: Life, MaxValueSize: MaxValue, Storage: jetstream.FileStorage, Replicas: max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("session bucket: %w", eventstore.Unavailable(err))
	}
	attempts, err := openAttempts(ctx, js, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{kv: kv, attempts: attempts, conn: js.Conn(), log: cfg.Logger, index: make(map[string]meta), done: make(chan struct{})}
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	w, err := s.watch(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch sessions: %w", eventstore.Unavailable(err))
	}
	go s.follow(wctx, w)
	return s, nil
}

// Close stops the watch.
func (s *Store) Close() {
	s.cancel()
	<-s.done
}

// watch starts a watch of the bucket and replaces the index with its replay.
func (s *Store) watch(ctx context.Context) (jetstream.KeyWatcher, error) {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return nil, err
	}
	fresh := make(map[string]meta)
	for u := range w.Updates() {
		if u == nil { // the end of the replay
			break
		}
		apply(fresh, u)
	}
	s.mu.Lock()
	s.index = fresh
	s.mu.Unlock()
	return w, nil
}

// follow applies the watch's updates until ctx ends, starting the watch
// again (every second until it starts) when it ends.
func (s *Store) follow(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(s.done)
	for {
		s.drain(ctx, w)
		for w = nil; w == nil; {
			if ctx.Err() != nil {
				return
			}
			var err error
			if w, err = s.watch(ctx); err != nil {
				w = nil
				s.log.Warn("session watch not restarted; trying again", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}
}

func (s *Store) drain(ctx context.Context, w jetstream.KeyWatcher) {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-w.Updates():
			if !ok {
				return
			}
			if u != nil {
				s.mu.Lock()
				apply(s.index, u)
				s.mu.Unlock()
			}
		}
	}
}

func apply(m map[string]meta, u jetstream.KeyValueEntry) {
	if u.Operation() != jetstream.KeyValuePut {
		delete(m, u.Key())
		return
	}
	var st stored
	if err := json.Unmarshal(u.Value(), &st); err == nil {
		// A use seen here (see Get) may be newer than the one stored.
		used := st.LastUsed
		if old, ok := m[u.Key()]; ok && old.lastUsed.After(used) {
			used = old.lastUsed
		}
		m[u.Key()] = meta{identity: st.Identity, created: st.Created, lastUsed: used}
	}
}

// errDisconnected: the bucket cannot be reached, so nothing is asked of it
// (a request would wait for its timeout).
var errDisconnected = fmt.Errorf("session bucket: NATS is not connected: %w", domain.ErrUnavailable)

// reachable fails at once while the connection is down, as the event store
// refuses appends.
func (s *Store) reachable() error {
	if s.conn != nil && !s.conn.IsConnected() {
		return errDisconnected
	}
	return nil
}

// Key is the bucket key of the session with this id: the hex SHA-256 of
// the id, so any cookie value makes a valid key and the id is not kept.
func Key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// sealer is the AEAD for the session with this id: its key is an HMAC of a
// label under the id, which the bucket key (a plain SHA-256) does not reveal.
func sealer(id string) cipher.AEAD {
	mac := hmac.New(sha256.New, []byte(id))
	mac.Write([]byte("engagements web session seal v1"))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// encode is the entry for sess, sealed under its id and bound to its key.
func encode(sess *Session) ([]byte, error) {
	plain, err := json.Marshal(secret{Token: sess.Token, CSRF: sess.CSRF, Flash: sess.Flash, Pending: sess.Pending, Person: sess.Person})
	if err != nil {
		return nil, err
	}
	aead := sealer(sess.ID)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, plain, []byte(Key(sess.ID)))
	b, err := json.Marshal(stored{Identity: sess.Identity, Created: sess.Created.UTC(), LastUsed: sess.LastUsed.UTC(), Sealed: sealed})
	if err != nil {
		return nil, err
	}
	if len(b) > MaxValue {
		return nil, fmt.Errorf("session of %d bytes: %w", len(b), errTooLarge)
	}
	return b, nil
}

// decode opens an entry with the id it was sealed under.
func decode(id string, e jetstream.KeyValueEntry) (*Session, error) {
	var st stored
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, fmt.Errorf("session entry: %w", err)
	}
	aead := sealer(id)
	if len(st.Sealed) < aead.NonceSize() {
		return nil, errors.New("session entry: sealed part too short")
	}
	plain, err := aead.Open(nil, st.Sealed[:aead.NonceSize()], st.Sealed[aead.NonceSize():], []byte(e.Key()))
	if err != nil {
		return nil, fmt.Errorf("session entry: %w", err)
	}
	var sec secret
	if err := json.Unmarshal(plain, &sec); err != nil {
		return nil, fmt.Errorf("session entry: %w", err)
	}
	return &Session{ID: id, Identity: st.Identity, Token: sec.Token, CSRF: sec.CSRF, Flash: sec.Flash,
		Pending: sec.Pending, Person: sec.Person, Created: st.Created, LastUsed: st.LastUsed, rev: e.Revision()}, nil
}

// randomToken is 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Start opens a session for identity, signed in with the token of this
// digest, within lim: an identity at its cap loses its own least recently
// used session, never someone else's; only at the total cap does the
// identity holding the most sessions lose one. Expired sessions seen on the
// way are deleted.
//
// The caps count what this instance's watch has seen, so sign-ins at the
// same moment on several instances can pass a cap by one each until the
// next sign-in; "least recently used" is exact for the uses this instance
// served and to within TouchEvery for others'.
func (s *Store) Start(ctx context.Context, identity, token string, lim Limits, now time.Time) (*Session, error) {
	return s.start(ctx, &Session{Identity: identity, Token: token}, lim, now)
}

// StartPerson is Start for a person signed in through the directory, whose
// identity is the actor their events record.
func (s *Store) StartPerson(ctx context.Context, identity string, p Person, lim Limits, now time.Time) (*Session, error) {
	return s.start(ctx, &Session{Identity: identity, Person: &p}, lim, now)
}

func (s *Store) start(ctx context.Context, sess *Session, lim Limits, now time.Time) (*Session, error) {
	if err := s.reachable(); err != nil {
		return nil, err
	}
	identity := sess.Identity
	sess.ID, sess.CSRF, sess.Created, sess.LastUsed = randomToken(), randomToken(), now, now
	for _, key := range s.evictions(identity, max(lim.PerIdentity, 1), max(lim.Total, 1), now) {
		if err := s.kv.Delete(ctx, key); err != nil {
			return nil, fmt.Errorf("end session: %w", eventstore.Unavailable(err))
		}
	}
	b, err := encode(sess)
	if err != nil {
		return nil, err
	}
	key := Key(sess.ID)
	if sess.rev, err = s.kv.Create(ctx, key, b); err != nil {
		return nil, fmt.Errorf("store session: %w", eventstore.Unavailable(err))
	}
	s.mu.Lock()
	s.index[key] = meta{identity: identity, created: sess.Created, lastUsed: sess.LastUsed}
	s.mu.Unlock()
	return sess, nil
}

// evictions are the keys to delete before identity opens one more session,
// taken out of the index.
func (s *Store) evictions(identity string, perIdentity, total int, now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []string
	drop := func(key string) {
		delete(s.index, key)
		gone = append(gone, key)
	}
	byIdentity := make(map[string][]string)
	for key, m := range s.index {
		if m.expired(now) {
			drop(key)
			continue
		}
		byIdentity[m.identity] = append(byIdentity[m.identity], key)
	}
	// Least recently used first; a tie goes to the older session.
	lru := func(keys []string) {
		slices.SortFunc(keys, func(a, b string) int {
			ma, mb := s.index[a], s.index[b]
			if c := ma.lastUsed.Compare(mb.lastUsed); c != 0 {
				return c
			}
			return ma.created.Compare(mb.created)
		})
	}
	own := byIdentity[identity]
	lru(own)
	for len(own) >= perIdentity {
		drop(own[0])
		own = own[1:]
	}
	byIdentity[identity] = own
	for len(s.index) >= total {
		var most string
		for id, keys := range byIdentity {
			if len(keys) > len(byIdentity[most]) {
				most = id
			}
		}
		keys := byIdentity[most]
		if len(keys) == 0 {
			break
		}
		lru(keys)
		drop(keys[0])
		byIdentity[most] = keys[1:]
	}
	return gone
}

// validID reports whether id could be a session id, before it is looked up.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}

// Get returns the live session with this id, or ErrNotFound. It always
// reads the bucket, so a session ended on any instance is gone here at
// once; an expired one is deleted. Its last use is written back when it is
// older than TouchEvery.
func (s *Store) Get(ctx context.Context, id string, now time.Time) (*Session, error) {
	sess, err := s.read(ctx, id)
	if err != nil {
		return nil, err
	}
	m := meta{created: sess.Created, lastUsed: sess.LastUsed}
	if m.expired(now) {
		if err := s.End(ctx, id); err != nil {
			return nil, err
		}
		return nil, ErrNotFound
	}
	// The index has every use this instance serves, so that evicting the
	// least recently used is exact here (and to within TouchEvery for the
	// uses other instances serve).
	s.mu.Lock()
	if m, ok := s.index[Key(id)]; ok && now.After(m.lastUsed) {
		m.lastUsed = now
		s.index[Key(id)] = m
	}
	s.mu.Unlock()
	if now.Sub(sess.LastUsed) >= TouchEvery {
		sess.LastUsed = now
		// Another request may have written it meanwhile; then this one
		// waits for the next minute.
		if err := s.write(ctx, sess); err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, err
		}
	}
	return sess, nil
}

// read returns the stored session, expired or not.
func (s *Store) read(ctx context.Context, id string) (*Session, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	if err := s.reachable(); err != nil {
		return nil, err
	}
	e, err := s.kv.Get(ctx, Key(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", eventstore.Unavailable(err))
	}
	sess, err := decode(id, e)
	if err != nil {
		s.log.Warn("session entry unreadable; ignored", "key", e.Key(), "err", err)
		return nil, ErrNotFound
	}
	return sess, nil
}

// write stores sess if the bucket still holds the revision it was read at.
func (s *Store) write(ctx context.Context, sess *Session) error {
	b, err := encode(sess)
	if err != nil {
		return err
	}
	rev, err := s.kv.Update(ctx, Key(sess.ID), b, sess.rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return err
	}
	if err != nil {
		return fmt.Errorf("store session: %w", eventstore.Unavailable(err))
	}
	sess.rev = rev
	return nil
}

// Change applies f to the stored session with this id and stores the result
// unless f returns false, reading again when another request wrote it
// meanwhile. It returns the session as stored (ErrNotFound when it ended).
func (s *Store) Change(ctx context.Context, id string, f func(*Session) bool) (*Session, error) {
	for range 5 {
		sess, err := s.read(ctx, id)
		if err != nil {
			return nil, err
		}
		if !f(sess) {
			return sess, nil
		}
		err = s.write(ctx, sess)
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return sess, err
		}
	}
	return nil, fmt.Errorf("session changed by too many requests at once: %w", domain.ErrConflict)
}

// End deletes the session with this id (which need not exist).
func (s *Store) End(ctx context.Context, id string) error {
	if err := s.reachable(); err != nil {
		return err
	}
	key := Key(id)
	if err := s.kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("end session: %w", eventstore.Unavailable(err))
	}
	s.mu.Lock()
	delete(s.index, key)
	s.mu.Unlock()
	return nil
}

// EndIdentity deletes every session of identity in the bucket (read
// itself, not this instance's index, which follows it only to within the
// watch's delay: a session opened a moment ago on another instance is ended
// too) and returns how many it ended.
func (s *Store) EndIdentity(ctx context.Context, identity string) (int, error) {
	if err := s.reachable(); err != nil {
		return 0, err
	}
	ended, err := endIdentity(ctx, s.kv, identity)
	s.mu.Lock()
	for _, key := range ended {
		delete(s.index, key)
	}
	s.mu.Unlock()
	return len(ended), err
}

// Len is the number of sessions this instance knows of, expired or not.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.index)
}

// EndIdentityIn deletes every session of identity in the session bucket
// on js, without opening a Store (an operator's command: it neither creates
// the bucket nor changes its configuration). Every instance refuses those
// sessions on their next request, as each reads the bucket. It returns how
// many it ended.
func EndIdentityIn(ctx context.Context, js jetstream.JetStream, identity string) (int, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("session bucket: %w", eventstore.Unavailable(err))
	}
	ended, err := endIdentity(ctx, kv, identity)
	return len(ended), err
}

// endIdentity deletes every session of identity in kv and returns the keys
// it deleted (those before an error, with it).
func endIdentity(ctx context.Context, kv jetstream.KeyValue, identity string) ([]string, error) {
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", eventstore.Unavailable(err))
	}
	var ended []string
	for key := range keys.Keys() {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // ended meanwhile
		}
		if err != nil {
			return ended, fmt.Errorf("read session: %w", eventstore.Unavailable(err))
		}
		var st stored
		if json.Unmarshal(e.Value(), &st) != nil || st.Identity != identity {
			continue
		}
		if err := kv.Delete(ctx, key); err != nil {
			return ended, fmt.Errorf("end session: %w", eventstore.Unavailable(err))
		}
		ended = append(ended, key)
	}
	return ended, nil
}
