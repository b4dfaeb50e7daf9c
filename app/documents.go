package app

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"strings"
	"sync"
	"time"

	"github.com/gabriel-vasile/mimetype"
	"github.com/google/uuid"
	"github.com/iom-who/engagements/domain"
)

// DocumentStore is what the document path needs from the object store that
// holds documents' bytes (eventstore.Store has it).
type DocumentStore interface {
	// PutDocument stores what r yields as document id's bytes; when r
	// fails, nothing is stored and r's error is returned.
	PutDocument(ctx context.Context, id, engagementID, name string, r io.Reader) error
	// DeleteDocument removes an object no event names.
	DeleteDocument(ctx context.Context, id string) error
	// OpenDocument reads document id's bytes and says how many the store holds.
	OpenDocument(ctx context.Context, id string) (io.ReadCloser, int64, error)
}

// DefaultMaxDocumentSize is the largest document accepted unless
// UseDocuments says otherwise (serve's --max-document-size).
const DefaultMaxDocumentSize = 25 << 20

// sniffBytes is how much of a document the type sniffer reads: enough for
// the zip entries that tell an Office document from another zip.
const sniffBytes = 64 << 10

// uploadTime bounds storing one document, client or no client: an upload
// that fails half-way is cleaned up with it, not with the request.
const uploadTime = 15 * time.Minute

var sniffLimit sync.Once

// UseDocuments gives the command path its document store and the largest
// document it takes (0: DefaultMaxDocumentSize, at most
// domain.MaxDocumentSize).
func (s *Service) UseDocuments(docs DocumentStore, maxSize int64) {
	if maxSize <= 0 {
		maxSize = DefaultMaxDocumentSize
	}
	s.docs, s.maxDocument = docs, min(maxSize, domain.MaxDocumentSize)
	sniffLimit.Do(func() { mimetype.SetLimit(sniffBytes) })
}

// MaxDocumentSize is the largest document Attach takes, in bytes.
func (s *Service) MaxDocumentSize() int64 { return s.maxDocument }

// Upload asks for a document to be stored and attached to an engagement.
type Upload struct {
	EngagementID string
	// Name is the file's name (checked, never changed: see
	// domain.CheckFileName).
	Name string
	// MediaType is the type the client declared (parameters are dropped);
	// empty or application/octet-stream: the name's extension says.
	MediaType string
	Body      io.Reader
	// Supersedes, when set, is the earlier document this one replaces.
	Supersedes string
	// OccurredAt is when the document came to be (signed, received); zero
	// means now.
	OccurredAt time.Time
	// TimePrecision is OccurredAt's precision (see Command).
	TimePrecision string
	// The rest is as in Command.
	Actor                     string
	ActorIssuer, ActorSubject string
	IfMatch                   int
	IdempotencyKey            string
	CorrelationID             string
	CausationID               string
}

// Attach checks u, stores its bytes under a new document id in the document
// store, and appends engagement.document_attached with their size and
// SHA-256 through Execute. Whatever is refused stores nothing: the
// engagement, the name, the declared type, what supersedes names and the
// version are checked before a byte is stored; the sniffed type before the
// upload starts (domain.ErrUnsupportedMediaType); the size while it streams
// (domain.ErrTooLarge: the partial upload is dropped); and when the append
// fails, the object is deleted again. It returns the result and the
// document as recorded.
func (s *Service) Attach(ctx context.Context, u Upload) (Result, domain.Document, error) {
	if s.docs == nil {
		return Result{}, domain.Document{}, fmt.Errorf("%w: no document store", domain.ErrUnavailable)
	}
	if p := domain.CheckFileName(u.Name); p != "" {
		return Result{}, domain.Document{}, &domain.ValidationError{Fields: []domain.FieldError{{Field: "name", Message: p}}}
	}
	declared, err := declaredType(u.MediaType, u.Name)
	if err != nil {
		return Result{}, domain.Document{}, err
	}
	cmd := Command{EngagementID: u.EngagementID, Type: domain.EngagementDocumentAttached, OccurredAt: u.OccurredAt, TimePrecision: u.TimePrecision,
		Actor: u.Actor, ActorIssuer: u.ActorIssuer, ActorSubject: u.ActorSubject, IfMatch: u.IfMatch, IdempotencyKey: u.IdempotencyKey, CorrelationID: u.CorrelationID,
		CausationID: u.CausationID, withBytes: true}
	data := domain.DocumentAttachedData{DocumentID: uuid.Must(uuid.NewV7()).String(), Name: u.Name,
		MediaType: declared, Supersedes: u.Supersedes, Size: 1, SHA256: strings.Repeat("0", 64)}
	if key := scopedKey(cmd); key != "" {
		if r, ok, err := s.seen(ctx, key); ok || err != nil {
			return s.attached(r, err) // a retry: the first upload's answer, nothing stored
		}
	}
	// Everything but the bytes, decided as the append will be (with a
	// placeholder size and digest), before a byte is stored.
	if cmd.Data, err = json.Marshal(data); err != nil {
		return Result{}, domain.Document{}, err
	}
	if _, _, _, err := s.load(ctx, &write{cmd: cmd}); err != nil {
		return Result{}, domain.Document{}, err
	}

	body := bufio.NewReaderSize(u.Body, sniffBytes)
	head, err := body.Peek(sniffBytes)
	if err != nil && !errors.Is(err, io.EOF) {
		return Result{}, domain.Document{}, fmt.Errorf("read the document: %w", err)
	}
	if len(head) == 0 {
		return Result{}, domain.Document{}, &domain.ValidationError{Fields: []domain.FieldError{{Field: "file", Message: "is empty"}}}
	}
	if sniffed := mimetype.Detect(head); !matches(declared, sniffed) {
		return Result{}, domain.Document{}, fmt.Errorf("%w: the content is %s, not %s as declared",
			domain.ErrUnsupportedMediaType, essence(sniffed.String()), declared)
	}

	counted := &counter{r: body, h: sha256.New(), max: s.maxDocument}
	upCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), uploadTime)
	defer cancel()
	if err := s.docs.PutDocument(upCtx, data.DocumentID, u.EngagementID, u.Name, counted); err != nil {
		return Result{}, domain.Document{}, err
	}
	data.Size, data.SHA256 = counted.n, hex.EncodeToString(counted.h.Sum(nil))
	if cmd.Data, err = json.Marshal(data); err != nil {
		s.discard(ctx, u.EngagementID, data.DocumentID)
		return Result{}, domain.Document{}, err
	}
	r, err := s.Execute(ctx, cmd)
	if err != nil || !s.hasDocument(u.EngagementID, data.DocumentID) {
		// Refused, failed, or a twin with the same key won: no event names
		// this object (unless the append is stored after all; discard
		// makes sure), so it must not stay.
		s.discard(ctx, u.EngagementID, data.DocumentID)
	}
	return s.attached(r, err)
}

// attached is Attach's answer for result r of an append: the document its
// event recorded.
func (s *Service) attached(r Result, err error) (Result, domain.Document, error) {
	if err != nil {
		return r, domain.Document{}, err
	}
	var d domain.Document
	s.proj.Read(r.EngagementID, func(e *domain.Engagement, _ uint64) {
		for _, x := range e.Documents() {
			if x.EventID == r.EventID {
				d = x
			}
		}
	})
	if d.ID == "" {
		return r, d, fmt.Errorf("engagement %s: event %s attached no document: %w", r.EngagementID, r.EventID, domain.ErrConflict)
	}
	return r, d, nil
}

// hasDocument reports whether the projection holds document id as one of
// engagement's.
func (s *Service) hasDocument(engagement, id string) bool {
	var ok bool
	s.proj.Read(engagement, func(e *domain.Engagement, _ uint64) { _, ok = e.Document(id) })
	return ok
}

// discard deletes the object of document id, which no event names, so that
// an unattached object never stays in the store. Before it does, it catches
// the projection up with the stream: an append whose answer was lost may
// have been stored after all, and then the object is attached and stays.
// When the stream cannot be asked, or the delete fails, the object is left
// (an orphan nobody can list or download, logged for operators).
func (s *Service) discard(ctx context.Context, engagement, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.catchUp(ctx); err != nil {
		s.log.Warn("document left unattached in the store: the stream did not answer", "document_id", id,
			"engagement_id", engagement, "err", err)
		return
	}
	if s.hasDocument(engagement, id) {
		return
	}
	if err := s.docs.DeleteDocument(ctx, id); err != nil {
		s.log.Warn("document left unattached in the store: delete failed", "document_id", id,
			"engagement_id", engagement, "err", err)
	}
}

// OpenDocument finds document id of engagement and opens its bytes: only a
// document an event attached can be read. It returns the document as
// recorded; the reader yields its bytes and fails at the end if they are not
// those its event recorded (size or SHA-256).
func (s *Service) OpenDocument(ctx context.Context, engagement, id string) (domain.Document, io.ReadCloser, error) {
	if err := domain.CheckID(id); err != nil {
		return domain.Document{}, nil, err
	}
	var d domain.Document
	var found bool
	if !s.proj.Read(engagement, func(e *domain.Engagement, _ uint64) { d, found = e.Document(id) }) {
		return d, nil, fmt.Errorf("engagement %s: %w", engagement, domain.ErrNotFound)
	}
	if !found {
		return d, nil, fmt.Errorf("document %s of engagement %s: %w", id, engagement, domain.ErrNotFound)
	}
	if s.docs == nil {
		return d, nil, fmt.Errorf("%w: no document store", domain.ErrUnavailable)
	}
	r, size, err := s.docs.OpenDocument(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return d, nil, fmt.Errorf("document %s: %w: the bytes are missing from the store", id, ErrDocumentDamaged)
	}
	if err != nil {
		return d, nil, err
	}
	if size != d.Size {
		r.Close()
		return d, nil, fmt.Errorf("document %s: %w: the store holds %d bytes, the event recorded %d", id, ErrDocumentDamaged, size, d.Size)
	}
	return d, &checked{ReadCloser: r, h: sha256.New(), want: d.SHA256, id: id}, nil
}

// ErrDocumentDamaged means an attached document's bytes are missing from
// the store or are not those its event recorded (verify names it).
var ErrDocumentDamaged = errors.New("document damaged")

// checked hashes what it reads and fails at the end when the digest is not
// the recorded one.
type checked struct {
	io.ReadCloser
	h    hash.Hash
	want string
	id   string
}

func (c *checked) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.want {
			return n, fmt.Errorf("document %s: %w: sha256 %s, the event recorded %s", c.id, ErrDocumentDamaged, got, c.want)
		}
	}
	return n, err
}

// counter hashes and counts what it reads, and fails with
// domain.ErrTooLarge once more than max bytes came.
type counter struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	max int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return 0, fmt.Errorf("%w: documents may be at most %d bytes", domain.ErrTooLarge, c.max)
	}
	c.h.Write(p[:n])
	return n, err
}

// declaredType is the allowed media type the client declared, or the one
// the name's extension stands for when it declared none or only
// application/octet-stream (what clients send when they do not know).
func declaredType(declared, name string) (string, error) {
	t := essence(declared)
	if t == "" || t == "application/octet-stream" {
		if t = domain.MediaTypeByName(name); t == "" {
			return "", fmt.Errorf("%w: no media type given, and the name %q does not say one of the allowed types",
				domain.ErrUnsupportedMediaType, name)
		}
	}
	if !domain.AllowedMediaType(t) {
		return "", fmt.Errorf("%w: %s is not one of the allowed types (%s)", domain.ErrUnsupportedMediaType,
			t, strings.Join(domain.DocumentMediaTypes, ", "))
	}
	return t, nil
}

// essence is a media type without its parameters, in lower case; "" when
// it does not parse.
func essence(t string) string {
	if strings.TrimSpace(t) == "" {
		return ""
	}
	m, _, err := mime.ParseMediaType(t)
	if err != nil {
		return "invalid"
	}
	return m
}

// matches reports whether content sniffed as m may be stored as declared:
// m is the declared type or a more specific one (text/html is text/plain),
// and CSV, which sniffing cannot always tell from text, may be any text.
func matches(declared string, m *mimetype.MIME) bool {
	for t := m; t != nil; t = t.Parent() {
		if t.Is(declared) {
			return true
		}
	}
	return declared == domain.MediaCSV && m.Is(domain.MediaText)
}
