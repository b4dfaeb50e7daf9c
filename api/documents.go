package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/labstack/echo/v4"
)

// documentsRoute is the route uploads are POSTed to; its body limit is the
// document limit, not MaxBody.
const documentsRoute = "/v1/engagements/:id/documents"

// Documents' transfers may take longer than the server's read and write
// timeouts allow other requests.
const (
	uploadDeadline   = 15 * time.Minute
	downloadDeadline = 15 * time.Minute
)

// multipartOverhead is what a multipart body may hold besides the file:
// boundaries, part headers and the small fields.
const multipartOverhead = 1 << 20

// maxFormField is the most bytes of a multipart field other than the file.
const maxFormField = 4 << 10

// documentJSON is a document as the API shows it.
type documentJSON struct {
	domain.Document
	// Current is true while no later version supersedes it.
	Current bool `json:"current"`
	// Href is where its bytes are downloaded.
	Href string `json:"href"`
}

func documentView(engagement string, d domain.Document) documentJSON {
	return documentJSON{Document: d, Current: d.SupersededBy == "",
		Href: "/v1/engagements/" + engagement + "/documents/" + d.ID}
}

// attachedJSON answers an upload: the document, and the event that
// recorded it.
type attachedJSON struct {
	documentJSON
	Sequence uint64 `json:"sequence"`
	Version  int    `json:"version"`
}

// uploadDocument stores a document and records engagement.document_attached:
// POST /v1/engagements/{id}/documents, as multipart/form-data (the file in
// the part "file", after the fields "supersedes" and "occurred_at") or as
// the raw bytes with their Content-Type and a name from ?name= or
// Content-Disposition's filename.
func (s *Server) uploadDocument(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	r := c.Request()
	ifMatch, err := parseIfMatch(r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	cmd, err := s.command(c, nil)
	if err != nil {
		return err
	}
	// A large upload may take longer than the server's read timeout.
	_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(uploadDeadline))
	r.Body = http.MaxBytesReader(c.Response(), r.Body, s.svc.MaxDocumentSize()+multipartOverhead)
	u := app.Upload{EngagementID: id, IfMatch: ifMatch, Actor: cmd.Actor, IdempotencyKey: cmd.IdempotencyKey,
		CorrelationID: cmd.CorrelationID, CausationID: cmd.CausationID}
	mt, params, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if mt == "multipart/form-data" {
		err = s.readParts(r, params["boundary"], &u)
	} else {
		err = rawUpload(r, &u)
	}
	if err != nil {
		return err
	}
	start := time.Now()
	res, d, err := s.svc.Attach(r.Context(), u)
	s.metrics.appends.WithLabelValues(outcome(err)).Observe(time.Since(start).Seconds())
	if err != nil {
		return uploadProblem(err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/engagements/"+id+"/documents/"+d.ID)
	c.Response().Header().Set("ETag", d.ETag())
	return c.JSON(http.StatusCreated, attachedJSON{documentJSON: documentView(id, d), Sequence: res.Sequence, Version: res.Version})
}

// outcome is an append's outcome for the metrics.
func outcome(err error) string {
	if err != nil {
		return fmt.Sprint(toProblem(uploadProblem(err)).Status)
	}
	return "appended"
}

// uploadProblem maps a body that was cut at the request limit to 413, like
// a document over the limit.
func uploadProblem(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return fmt.Errorf("%w: the request body is over the limit", domain.ErrTooLarge)
	}
	return err
}

// readParts reads a multipart upload up to its file part, which u.Body then
// reads from: the fields before it are read, any after it never are.
func (s *Server) readParts(r *http.Request, boundary string, u *app.Upload) error {
	if boundary == "" {
		return badRequest("a multipart/form-data body needs a boundary parameter")
	}
	mr := multipart.NewReader(r.Body, boundary)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return &domain.ValidationError{Fields: []domain.FieldError{{Field: "file", Message: "is required"}}}
		}
		if err != nil {
			return uploadProblem(badRequestErr("the multipart body could not be read", err))
		}
		_, disp, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		switch name := p.FormName(); name {
		case "file":
			// The name as sent: Part.FileName would drop a path silently,
			// and a name with a path is refused, not trimmed.
			u.Name, u.MediaType, u.Body = disp["filename"], p.Header.Get(echo.HeaderContentType), p
			return nil
		case "supersedes", "occurred_at":
			v, err := io.ReadAll(io.LimitReader(p, maxFormField+1))
			if err != nil {
				return uploadProblem(badRequestErr("the multipart body could not be read", err))
			}
			if len(v) > maxFormField {
				return badRequest("a form field is too long", domain.FieldError{Field: name, Message: "is too long"})
			}
			if err := setUploadField(u, name, string(v)); err != nil {
				return err
			}
		default:
			return badRequest("unknown form field", domain.FieldError{Field: truncate(name, 64),
				Message: `unknown field (send "file", and before it "supersedes" and "occurred_at")`})
		}
	}
}

// rawUpload takes the body itself as the file: its type from Content-Type,
// its name from ?name= or Content-Disposition's filename (or filename*).
func rawUpload(r *http.Request, u *app.Upload) error {
	q := r.URL.Query()
	u.MediaType, u.Body = r.Header.Get(echo.HeaderContentType), r.Body
	if u.MediaType == "" {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType,
			"the body has no Content-Type; send the document's media type, or multipart/form-data")
	}
	u.Name = q.Get("name")
	if u.Name == "" {
		if _, disp, err := mime.ParseMediaType(r.Header.Get("Content-Disposition")); err == nil {
			u.Name = disp["filename"]
		}
	}
	if u.Name == "" {
		return &domain.ValidationError{Fields: []domain.FieldError{{Field: "name",
			Message: "is required: ?name= or Content-Disposition: attachment; filename=…"}}}
	}
	for _, f := range []string{"supersedes", "occurred_at"} {
		if err := setUploadField(u, f, q.Get(f)); err != nil {
			return err
		}
	}
	return nil
}

// setUploadField sets supersedes or occurred_at from a form field or query
// parameter.
func setUploadField(u *app.Upload, name, v string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	switch name {
	case "supersedes":
		if domain.CheckID(v) != nil {
			return badRequest("supersedes must be a document id", domain.FieldError{Field: "supersedes", Message: "must be a UUID"})
		}
		u.Supersedes = v
	case "occurred_at":
		t, precision, err := parseOccurred(v)
		if err != nil {
			return &domain.ValidationError{Fields: []domain.FieldError{{Field: "occurred_at", Message: err.Error()}}}
		}
		u.OccurredAt, u.TimePrecision = t, precision
	}
	return nil
}

func badRequestErr(detail string, err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return err
	}
	return badRequest(detail)
}

// listDocuments: GET /v1/engagements/{id}/documents, oldest first, current
// and superseded, each with who attached it and when.
func (s *Server) listDocuments(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	e, err := s.proj.Get(c.Request().Context(), id, domain.Window{})
	if err != nil {
		return err
	}
	items := make([]documentJSON, 0, len(e.Documents()))
	for _, d := range e.Documents() {
		items = append(items, documentView(id, d))
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items})
}

// downloadDocument streams a document's bytes:
// GET /v1/engagements/{id}/documents/{document_id}.
func (s *Server) downloadDocument(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	docID := c.Param("document_id")
	if err := domain.CheckID(docID); err != nil {
		return badRequest(err.Error(), domain.FieldError{Field: "document_id", Message: "must be a UUID"})
	}
	d, body, err := s.svc.OpenDocument(c.Request().Context(), id, docID)
	if err != nil {
		return err
	}
	defer body.Close()
	h := c.Response().Header()
	if inm := c.Request().Header.Values("If-None-Match"); len(inm) > 0 && tagMatches(inm, d.SHA256) {
		h.Set("ETag", d.ETag())
		return c.NoContent(http.StatusNotModified)
	}
	for _, kv := range d.DownloadHeaders() {
		h.Set(kv[0], kv[1])
	}
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(downloadDeadline))
	c.Response().WriteHeader(http.StatusOK)
	if _, err := io.Copy(c.Response(), body); err != nil {
		// Too late for a problem: end the response short, so that the
		// client sees a failed download rather than wrong bytes.
		s.log.Error("document download failed", "engagement_id", id, "document_id", docID, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// tagMatches reports whether If-None-Match's lists hold "*" or the entity
// tag sum (weak comparison): a document's digest, a calendar feed's.
func tagMatches(lines []string, sum string) bool {
	for _, l := range lines {
		for t := range strings.SplitSeq(l, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == `"`+sum+`"` {
				return true
			}
		}
	}
	return false
}
