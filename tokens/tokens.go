// Package tokens is the credentials store: the API tokens (only their
// SHA-256 kept) that api's bearer authentication and the web UI's sign-in
// check, in a JetStream KV bucket that the embedded server's NATS
// permissions keep away from subscribers. It is a package of its own, not
// part of eventstore, because credentials are not events: it only shares
// the store's NATS connection (and its rule for outages). It imports domain
// and eventstore.
package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the JetStream KV bucket of API tokens.
const Bucket = "ENGAGEMENTS_TOKENS"

// Prefix starts every token, so a leaked one is easy to recognise.
const Prefix = "eng_"

// storedToken is a token as kept in KV: only the SHA-256 of the secret.
type storedToken struct {
	domain.TokenInfo
	Hash string `json:"sha256"`
}

// Store keeps API tokens in a KV bucket shared by every instance, with a
// local copy that a watch keeps current, so a revocation anywhere takes
// effect everywhere at once.
type Store struct {
	kv jetstream.KeyValue

	mu     sync.RWMutex
	byName map[string]storedToken

	// revoked are told the name of each token that disappears.
	hooksMu sync.Mutex
	revoked []func(name string)

	cancel  context.CancelFunc
	done    chan struct{}
	restart chan struct{}
	log     *slog.Logger
}

// Conn is the NATS connection the bucket lives on; eventstore.Store is one.
type Conn interface {
	// JetStream is the connection's JetStream context.
	JetStream() jetstream.JetStream
	// OnReconnect registers f to run after the connection comes back.
	OnReconnect(f func())
}

// Config tunes the store. The zero value is usable.
type Config struct {
	// Replicas of the bucket; 0 means 1.
	Replicas int
	// Logger receives watch troubles; nil discards them.
	Logger *slog.Logger
}

// Open opens (creating if needed) the token bucket on conn and starts
// watching it. Call Close on the result before closing the connection.
func Open(ctx context.Context, conn Conn, cfg Config) (*Store, error) {
	kv, err := eventstore.Provision(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return conn.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: Bucket, Description: "API tokens (SHA-256 only)", History: 1,
			Storage: jetstream.FileStorage, Replicas: max(cfg.Replicas, 1),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("token bucket: %w", eventstore.Unavailable(err))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := &Store{kv: kv, byName: make(map[string]storedToken), done: make(chan struct{}),
		restart: make(chan struct{}, 1), log: cfg.Logger}
	wctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	w, err := t.watch(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch tokens: %w", eventstore.Unavailable(err))
	}
	// A watch resumes by itself after an outage only once it has missed its
	// heartbeats (tens of seconds); a revocation made meanwhile on another
	// instance must not stay unseen that long, so reconnecting restarts it.
	conn.OnReconnect(func() {
		select {
		case t.restart <- struct{}{}:
		default:
		}
	})
	go t.follow(wctx, w)
	return t, nil
}

// watch starts a watch of the bucket and replaces the local copy with its
// replay of every current value (so deletions missed meanwhile count too).
func (t *Store) watch(ctx context.Context) (jetstream.KeyWatcher, error) {
	w, err := t.kv.WatchAll(ctx)
	if err != nil {
		return nil, err
	}
	fresh := make(map[string]storedToken)
	for u := range w.Updates() {
		if u == nil { // the end of the replay
			break
		}
		apply(fresh, u)
	}
	t.mu.Lock()
	var gone []string
	for name := range t.byName {
		if _, ok := fresh[name]; !ok {
			gone = append(gone, name)
		}
	}
	t.byName = fresh
	t.mu.Unlock()
	for _, name := range gone {
		t.notifyRevoked(name)
	}
	return w, nil
}

// follow applies the watch's updates until ctx ends, restarting the watch
// when asked to (after a reconnect) or when it ends.
func (t *Store) follow(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(t.done)
	for w != nil {
		t.drain(ctx, w)
		w = t.rewatch(ctx)
	}
}

// rewatch starts the watch again, trying every second until it starts or
// ctx ends (nil).
func (t *Store) rewatch(ctx context.Context) jetstream.KeyWatcher {
	for ctx.Err() == nil {
		w, err := t.watch(ctx)
		if err == nil {
			return w
		}
		t.log.Warn("token watch not restarted; trying again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// drain applies updates until ctx ends, a restart is asked for or the
// watch ends, then stops the watch.
func (t *Store) drain(ctx context.Context, w jetstream.KeyWatcher) {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.restart:
			return
		case u, ok := <-w.Updates():
			if !ok {
				return
			}
			if u != nil {
				t.mu.Lock()
				apply(t.byName, u)
				t.mu.Unlock()
				if u.Operation() != jetstream.KeyValuePut {
					t.notifyRevoked(u.Key())
				}
			}
		}
	}
}

func apply(m map[string]storedToken, u jetstream.KeyValueEntry) {
	if u.Operation() != jetstream.KeyValuePut {
		delete(m, u.Key())
		return
	}
	var st storedToken
	if err := json.Unmarshal(u.Value(), &st); err == nil {
		m[u.Key()] = st
	}
}

// Close stops the watch.
func (t *Store) Close() {
	t.cancel()
	<-t.done
}

// Create makes a new token for name with role and returns the secret, which
// is not kept anywhere: only its SHA-256 is stored.
func (t *Store) Create(ctx context.Context, name string, role domain.Role) (string, domain.TokenInfo, error) {
	if err := domain.CheckTokenName(name); err != nil {
		return "", domain.TokenInfo{}, err
	}
	if !role.Valid() {
		return "", domain.TokenInfo{}, &domain.ValidationError{Fields: []domain.FieldError{{Field: "role",
			Message: "must be admin, coordinator, auditor or subscriber"}}}
	}
	secret := make([]byte, 32) // 256 bits
	if _, err := rand.Read(secret); err != nil {
		return "", domain.TokenInfo{}, fmt.Errorf("random token: %w", err)
	}
	token := Prefix + base64.RawURLEncoding.EncodeToString(secret)
	st := storedToken{TokenInfo: domain.TokenInfo{Name: name, Role: role, CreatedAt: time.Now().UTC()}, Hash: hashToken(token)}
	raw, err := json.Marshal(st)
	if err != nil {
		return "", domain.TokenInfo{}, err
	}
	if _, err := t.kv.Create(ctx, name, raw); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return "", domain.TokenInfo{}, fmt.Errorf("token %q: %w", name, domain.ErrExists)
		}
		return "", domain.TokenInfo{}, fmt.Errorf("store token: %w", eventstore.Unavailable(err))
	}
	t.mu.Lock()
	t.byName[name] = st
	t.mu.Unlock()
	return token, st.TokenInfo, nil
}

// List returns every token's name, role and creation time, by name.
func (t *Store) List() []domain.TokenInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]domain.TokenInfo, 0, len(t.byName))
	for _, st := range t.byName {
		out = append(out, st.TokenInfo)
	}
	slices.SortFunc(out, func(a, b domain.TokenInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Revoke deletes the token called name; it stops working at once here and,
// through the watch, on every other instance.
func (t *Store) Revoke(ctx context.Context, name string) error {
	t.mu.RLock()
	_, ok := t.byName[name]
	t.mu.RUnlock()
	if !ok {
		return fmt.Errorf("token %q: %w", name, domain.ErrNotFound)
	}
	if err := t.kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("revoke token: %w", eventstore.Unavailable(err))
	}
	t.mu.Lock()
	delete(t.byName, name)
	t.mu.Unlock()
	t.notifyRevoked(name)
	return nil
}

// OnRevoke registers f to be told the name of every token revoked, here or
// (through the watch) on another instance, after it stopped authenticating.
// f may be told a name more than once.
func (t *Store) OnRevoke(f func(name string)) {
	t.hooksMu.Lock()
	defer t.hooksMu.Unlock()
	t.revoked = append(t.revoked, f)
}

func (t *Store) notifyRevoked(name string) {
	t.hooksMu.Lock()
	hooks := slices.Clone(t.revoked)
	t.hooksMu.Unlock()
	for _, f := range hooks {
		f(name)
	}
}

// Authenticate finds the token's owner. Every stored hash is compared in
// constant time, so timing says nothing about which tokens exist.
func (t *Store) Authenticate(token string) (domain.TokenInfo, bool) {
	return t.AuthenticateDigest(Digest(token))
}

// AuthenticateDigest is Authenticate for the token with this Digest, for
// what keeps a digest instead of the token (the web sessions).
func (t *Store) AuthenticateDigest(digest string) (domain.TokenInfo, bool) {
	h := []byte(digest)
	t.mu.RLock()
	defer t.mu.RUnlock()
	var found domain.TokenInfo
	ok := 0
	for _, st := range t.byName {
		if subtle.ConstantTimeCompare(h, []byte(st.Hash)) == 1 {
			found, ok = st.TokenInfo, 1
		}
	}
	return found, ok == 1
}

// Len is the number of tokens.
func (t *Store) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byName)
}

// Digest is the SHA-256 of a token as the store keeps it.
func Digest(token string) string { return hashToken(token) }

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawStdEncoding.EncodeToString(sum[:])
}
