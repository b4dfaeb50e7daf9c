package eventstore

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
	"github.com/nats-io/nats.go/jetstream"
)

// TokenBucket is the JetStream KV bucket of API tokens.
const TokenBucket = "ENGAGEMENTS_TOKENS"

// TokenPrefix starts every token, so a leaked one is easy to recognise.
const TokenPrefix = "eng_"

// storedToken is a token as kept in KV: only the SHA-256 of the secret.
type storedToken struct {
	domain.TokenInfo
	Hash string `json:"sha256"`
}

// Tokens keeps API tokens in a KV bucket shared by every instance, with a
// local copy that a watch keeps current, so a revocation anywhere takes
// effect everywhere at once.
type Tokens struct {
	kv jetstream.KeyValue

	mu     sync.RWMutex
	byName map[string]storedToken

	cancel  context.CancelFunc
	done    chan struct{}
	restart chan struct{}
	log     *slog.Logger
}

// Tokens opens (creating if needed) the token bucket and starts watching it.
// Call Close on the result before closing the store.
func (s *Store) Tokens(ctx context.Context, replicas int) (*Tokens, error) {
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: TokenBucket, Description: "API tokens (SHA-256 only)", History: 1,
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("token bucket: %w", unavailable(err))
	}
	t := &Tokens{kv: kv, byName: make(map[string]storedToken), done: make(chan struct{}),
		restart: make(chan struct{}, 1), log: s.log}
	wctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	w, err := t.watch(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch tokens: %w", unavailable(err))
	}
	// A watch resumes by itself after an outage only once it has missed its
	// heartbeats (tens of seconds); a revocation made meanwhile on another
	// instance must not stay unseen that long, so reconnecting restarts it.
	s.OnReconnect(func() {
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
func (t *Tokens) watch(ctx context.Context) (jetstream.KeyWatcher, error) {
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
	t.byName = fresh
	t.mu.Unlock()
	return w, nil
}

// follow applies the watch's updates until ctx ends, restarting the watch
// when asked to (after a reconnect) or when it ends.
func (t *Tokens) follow(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(t.done)
	for {
		if w != nil {
			w = t.drain(ctx, w)
		}
		if ctx.Err() != nil {
			return
		}
		var err error
		if w, err = t.watch(ctx); err != nil {
			t.log.Warn("token watch not restarted; trying again", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// drain applies updates until ctx ends or a restart is asked for, then
// stops the watch.
func (t *Tokens) drain(ctx context.Context, w jetstream.KeyWatcher) jetstream.KeyWatcher {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.restart:
			return nil
		case u, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if u != nil {
				t.mu.Lock()
				apply(t.byName, u)
				t.mu.Unlock()
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
func (t *Tokens) Close() {
	t.cancel()
	<-t.done
}

// Create makes a new token for name with role and returns the secret, which
// is not kept anywhere: only its SHA-256 is stored.
func (t *Tokens) Create(ctx context.Context, name string, role domain.Role) (string, domain.TokenInfo, error) {
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
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	st := storedToken{TokenInfo: domain.TokenInfo{Name: name, Role: role, CreatedAt: time.Now().UTC()}, Hash: hashToken(token)}
	raw, err := json.Marshal(st)
	if err != nil {
		return "", domain.TokenInfo{}, err
	}
	if _, err := t.kv.Create(ctx, name, raw); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return "", domain.TokenInfo{}, fmt.Errorf("token %q: %w", name, domain.ErrExists)
		}
		return "", domain.TokenInfo{}, fmt.Errorf("store token: %w", unavailable(err))
	}
	t.mu.Lock()
	t.byName[name] = st
	t.mu.Unlock()
	return token, st.TokenInfo, nil
}

// List returns every token's name, role and creation time, by name.
func (t *Tokens) List() []domain.TokenInfo {
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
func (t *Tokens) Revoke(ctx context.Context, name string) error {
	t.mu.RLock()
	_, ok := t.byName[name]
	t.mu.RUnlock()
	if !ok {
		return fmt.Errorf("token %q: %w", name, domain.ErrNotFound)
	}
	if err := t.kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("revoke token: %w", unavailable(err))
	}
	t.mu.Lock()
	delete(t.byName, name)
	t.mu.Unlock()
	return nil
}

// Authenticate finds the token's owner. Every stored hash is compared in
// constant time, so timing says nothing about which tokens exist.
func (t *Tokens) Authenticate(token string) (domain.TokenInfo, bool) {
	h := []byte(hashToken(token))
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
func (t *Tokens) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byName)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawStdEncoding.EncodeToString(sum[:])
}
