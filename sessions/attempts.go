package sessions

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iom-who/engagements/eventstore"
)

// AttemptsBucket holds directory sign-ins between the redirect to the
// provider and its answer: each under the SHA-256 of its state, sealed
// under the state, taken (deleted) once.
const AttemptsBucket = "ENGAGEMENTS_SIGNINS"

// AttemptLife is the attempts bucket's TTL: a sign-in not finished within
// it is gone.
const AttemptLife = 10 * time.Minute

// maxAttempt is the largest attempt the bucket takes.
const maxAttempt = 4 << 10

// ErrAttemptUsed: no sign-in waits under this state: it never began, was
// finished already (a replayed state) or expired.
var ErrAttemptUsed = fmt.Errorf("sign-in attempt: %w", ErrNotFound)

// openAttempts opens (creating if needed) the attempts bucket.
func openAttempts(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: AttemptsBucket, Description: "Directory sign-ins under way (under the SHA-256 of their state; sealed)",
		History: 1, TTL: AttemptLife, MaxValueSize: maxAttempt, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("sign-in bucket: %w", eventstore.Unavailable(err))
	}
	return kv, nil
}

// Hold keeps value, sealed, under state until Take or AttemptLife.
func (s *Store) Hold(ctx context.Context, state string, value []byte) error {
	if err := s.reachable(); err != nil {
		return err
	}
	aead := sealer(state)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(value)+aead.Overhead())
	_, _ = rand.Read(nonce)
	key := Key(state)
	sealed := aead.Seal(nonce, nonce, value, []byte(key))
	if len(sealed) > maxAttempt {
		return fmt.Errorf("sign-in attempt of %d bytes: %w", len(sealed), errTooLarge)
	}
	if _, err := s.attempts.Create(ctx, key, sealed); err != nil {
		return fmt.Errorf("store sign-in attempt: %w", eventstore.Unavailable(err))
	}
	return nil
}

// Take returns what Hold kept under state and deletes it, so a state is
// taken once on every instance: of two Takes at once, the one whose delete
// comes second gets ErrAttemptUsed.
func (s *Store) Take(ctx context.Context, state string) ([]byte, error) {
	if err := s.reachable(); err != nil {
		return nil, err
	}
	if !validID(state) {
		return nil, ErrAttemptUsed
	}
	key := Key(state)
	e, err := s.attempts.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrAttemptUsed
	}
	if err != nil {
		return nil, fmt.Errorf("read sign-in attempt: %w", eventstore.Unavailable(err))
	}
	// Deleting at the revision read is what makes the take once only.
	if err := s.attempts.Delete(ctx, key, jetstream.LastRevision(e.Revision())); err != nil {
		var apiErr *jetstream.APIError
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.As(err, &apiErr) &&
			(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
				apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return nil, ErrAttemptUsed
		}
		return nil, fmt.Errorf("take sign-in attempt: %w", eventstore.Unavailable(err))
	}
	if time.Since(e.Created()) > AttemptLife {
		return nil, ErrAttemptUsed
	}
	aead := sealer(state)
	b := e.Value()
	if len(b) < aead.NonceSize() {
		return nil, ErrAttemptUsed
	}
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(key))
	if err != nil {
		return nil, ErrAttemptUsed
	}
	return plain, nil
}
