package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/iom-who/engagements/domain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DocumentBucket is the JetStream Object Store bucket that holds the bytes of
// attached documents, one object per document, named by the document's id.
// The engagement.document_attached event on the stream records each one's
// SHA-256, so the hash chain covers the bytes too (Verify checks them).
const DocumentBucket = "ENGAGEMENTS_DOCUMENTS"

// openDocuments creates or updates the document bucket, with the stream's
// replicas; read-only, it opens the bucket if there is one.
func (s *Store) openDocuments(ctx context.Context) error {
	var err error
	if s.cfg.ReadOnly {
		s.docs, err = s.js.ObjectStore(ctx, DocumentBucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil // a store from before documents: every document event's bytes are missing
		}
	} else {
		s.docs, err = Provision(ctx, func(ctx context.Context) (jetstream.ObjectStore, error) {
			return s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
				Bucket:      DocumentBucket,
				Description: "Attached documents' bytes, named by document id; the stream's events record their SHA-256",
				Storage:     jetstream.FileStorage,
				Replicas:    s.cfg.Replicas,
			})
		})
	}
	if err != nil {
		return fmt.Errorf("open object store %s: %w", DocumentBucket, err)
	}
	return nil
}

// PutDocument stores what r yields as the bytes of document id, uploaded for
// engagement as name (the object's header and description say so; only the
// event makes it a document). When r fails
// (a size limit, the client going away) or the store does, nothing is stored
// and r's error is returned as it is.
func (s *Store) PutDocument(ctx context.Context, id, engagement, name string, r io.Reader) error {
	if err := domain.CheckID(id); err != nil {
		return err
	}
	if err := s.WritesRefused(); err != nil {
		return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	if s.docs == nil {
		return fmt.Errorf("%w: the document bucket is not open", domain.ErrUnavailable)
	}
	h := nats.Header{}
	h.Set("Engagements-Engagement-Id", engagement)
	_, err := s.docs.Put(ctx, jetstream.ObjectMeta{Name: id, Description: name, Headers: h}, &readerOnly{r})
	var re readError
	switch {
	case errors.As(err, &re):
		return re.err
	case err != nil:
		return fmt.Errorf("store document %s: %w", id, Unavailable(err))
	}
	return nil
}

// readerOnly tells the reader's own errors from the store's.
type readerOnly struct{ r io.Reader }

type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

func (r *readerOnly) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = readError{err}
	}
	return n, err
}

// DeleteDocument removes document id's bytes. The service calls it only for
// an upload whose event was not stored: attached documents are never deleted.
func (s *Store) DeleteDocument(ctx context.Context, id string) error {
	if err := domain.CheckID(id); err != nil {
		return err
	}
	if s.docs == nil {
		return fmt.Errorf("%w: the document bucket is not open", domain.ErrUnavailable)
	}
	if err := s.docs.Delete(ctx, id); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete document %s: %w", id, Unavailable(err))
	}
	return nil
}

// OpenDocument reads document id's bytes; size is what the bucket says it
// holds. domain.ErrNotFound when the bucket has no such object.
func (s *Store) OpenDocument(ctx context.Context, id string) (r io.ReadCloser, size int64, err error) {
	if err := domain.CheckID(id); err != nil {
		return nil, 0, err
	}
	if s.docs == nil {
		return nil, 0, fmt.Errorf("document %s: %w", id, domain.ErrNotFound)
	}
	res, err := s.docs.Get(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, 0, fmt.Errorf("document %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read document %s: %w", id, Unavailable(err))
	}
	info, err := res.Info()
	if err != nil {
		res.Close()
		return nil, 0, fmt.Errorf("read document %s: %w", id, Unavailable(err))
	}
	return res, int64(info.Size), nil
}

// documentProblem reads document id and says how it differs from what its
// event recorded, "" when it does not. err is for a store that did not
// answer.
func (s *Store) documentProblem(ctx context.Context, d domain.DocumentAttachedData) (string, error) {
	r, size, err := s.OpenDocument(ctx, d.DocumentID)
	if errors.Is(err, domain.ErrNotFound) {
		return fmt.Sprintf("document %s (%q) is missing from the bucket %s", d.DocumentID, d.Name, DocumentBucket), nil
	}
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	switch {
	case errors.Is(err, jetstream.ErrDigestMismatch):
		return fmt.Sprintf("document %s (%q) is altered: its chunks do not match the bucket's own digest", d.DocumentID, d.Name), nil
	case err != nil:
		return "", fmt.Errorf("read document %s: %w", d.DocumentID, Unavailable(err))
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != d.SHA256 || n != d.Size || size != d.Size {
		return fmt.Sprintf("document %s (%q) is altered: its bytes (%d, sha256 %s) are not those its event recorded (%d, sha256 %s)",
			d.DocumentID, d.Name, n, sum, d.Size, d.SHA256), nil
	}
	return "", nil
}
