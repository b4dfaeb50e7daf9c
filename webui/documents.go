package webui

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
)

// documentView is one attached document as the engagement page lists it.
type documentView struct {
	domain.Document
	Href string
	// SupersedesName and SupersededByName name the other versions.
	SupersedesName, SupersededByName string
	Size                             string
}

// uploadView is the upload form on the engagement page.
type uploadView struct {
	Key string
	// Current are the documents a new version may supersede.
	Current []documentView
	// Error is why the last upload was refused; nothing was stored.
	Error string
	// Accept lists the allowed types, for the file input.
	Accept string
	// Max is the size limit, as text.
	Max string
}

// documentViews lists e's documents, oldest first, with links to download them.
func documentViews(e *domain.Engagement) []documentView {
	docs := e.Documents()
	out := make([]documentView, 0, len(docs))
	name := func(id string) string {
		if d, ok := e.Document(id); ok {
			return d.Name
		}
		return ""
	}
	for _, d := range docs {
		out = append(out, documentView{Document: d, Href: documentHref(e.ID(), d.ID), Size: sizeText(d.Size),
			SupersedesName: name(d.Supersedes), SupersededByName: name(d.SupersededBy)})
	}
	return out
}

func documentHref(engagement, id string) string {
	return "/engagements/" + engagement + "/documents/" + id
}

// uploadForm is the upload form for e, with the error of a refused upload.
func (u *UI) uploadForm(e *domain.Engagement, refused string) *uploadView {
	f := &uploadView{Key: randomToken(), Error: refused, Max: sizeText(u.svc.MaxDocumentSize())}
	for _, d := range documentViews(e) {
		if d.SupersededBy == "" {
			f.Current = append(f.Current, d)
		}
	}
	accept := append(slices.Clone(domain.DocumentMediaTypes), ".pdf", ".docx", ".xlsx", ".pptx", ".doc", ".xls",
		".odt", ".ods", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".txt", ".csv")
	f.Accept = strings.Join(accept, ",")
	return f
}

// sizeText is a size in bytes as people read it.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// documentFacts are what a document_attached entry of the history shows:
// the document's name (a link to it), type, size, digest and what it
// supersedes.
func documentFacts(e *domain.Engagement, ev domain.Event) []fact {
	data, err := domain.DecodeData[domain.DocumentAttachedData](ev)
	if err != nil {
		return nil
	}
	out := []fact{{Label: "Document", Value: data.Name, Href: documentHref(e.ID(), data.DocumentID)},
		{Label: "Type", Value: data.MediaType}, {Label: "Size", Value: sizeText(data.Size)},
		{Label: "SHA-256", Value: data.SHA256, Wide: true}}
	if data.Supersedes != "" {
		f := fact{Label: "Supersedes", Value: data.Supersedes, Href: documentHref(e.ID(), data.Supersedes)}
		if d, ok := e.Document(data.Supersedes); ok {
			f.Value = d.Name
		}
		out = append(out, f)
	}
	return out
}

// uploadTimeout bounds reading an upload from the browser.
const uploadTimeout = 15 * time.Minute

// maxUploadField is the most bytes of a form field besides the file.
const maxUploadField = 4 << 10

// upload: POST /engagements/{id}/documents, the page's upload form
// (multipart/form-data). The body is read as it comes, never buffered
// whole: the session's CSRF token must be its first part (403 otherwise,
// before anything else is read), the small fields follow, the file comes
// last and streams into the document store.
func (u *UI) upload(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if err := domain.CheckID(id); err != nil {
		u.failed(w, r, s, err)
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(uploadTimeout))
	r.Body = http.MaxBytesReader(w, r.Body, u.svc.MaxDocumentSize()+1<<20)
	up := app.Upload{EngagementID: id, Actor: s.user.Name, ActorIssuer: s.user.Issuer, ActorSubject: s.user.Subject}
	mr, err := r.MultipartReader()
	if err != nil {
		u.errorPage(w, r, s, http.StatusBadRequest, "The form could not be read",
			"It was not sent as a file upload. Go back, reload the page and try again.")
		return
	}
	p, ok := u.filePart(w, r, s, mr, func(name, v string) bool {
		switch name {
		case "_key":
			up.IdempotencyKey = formKey(v)
		case "supersedes":
			up.Supersedes = strings.TrimSpace(v)
			if up.Supersedes != "" && domain.CheckID(up.Supersedes) != nil {
				u.uploadRefused(w, r, s, id, &domain.ValidationError{Fields: []domain.FieldError{{Field: "supersedes", Message: "is not a document"}}})
				return false
			}
		case occurredAt:
			t, precision, err := parseOccurred(v)
			if err != nil {
				u.uploadRefused(w, r, s, id, err)
				return false
			}
			up.OccurredAt, up.TimePrecision = t, precision
		}
		return true
	})
	if !ok {
		return
	}
	var name string
	if p != nil {
		_, disp, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		name = disp["filename"]
	}
	if name == "" {
		u.uploadRefused(w, r, s, id, &domain.ValidationError{Fields: []domain.FieldError{{Field: "file", Message: "choose a file"}}})
		return
	}
	up.Name, up.MediaType, up.Body = name, p.Header.Get("Content-Type"), p
	_, d, err := u.svc.Attach(r.Context(), up)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			err = fmt.Errorf("%w: the upload is over the limit", domain.ErrTooLarge)
		}
		u.uploadRefused(w, r, s, id, err)
		return
	}
	u.setFlash(s, "Attached: "+d.Name+".")
	seeOther(w, r, "/engagements/"+url.PathEscape(id)+"#documents")
}

// readField reads a small form field.
// filePart reads an upload form's parts up to its file part ("file"),
// never buffering the body: the session's CSRF token must be the first
// part (403 otherwise, before anything else is read), and each small field
// after it is handed to field, which returns false once it has answered
// the request itself. file is nil when the form ended without a file part
// (the token having been sent): the caller answers. ok is false when the
// request was answered here or by field.
func (u *UI) filePart(w http.ResponseWriter, r *http.Request, s *session, mr *multipart.Reader,
	field func(name, value string) bool) (file *multipart.Part, ok bool) {
	csrf := false
	for {
		p, err := mr.NextPart()
		if err != nil {
			if !csrf {
				u.csrfRefused(w, r, s)
				return nil, false
			}
			return nil, true
		}
		name := p.FormName()
		if !csrf && name != "_csrf" {
			u.csrfRefused(w, r, s)
			return nil, false
		}
		if name == "file" {
			return p, true
		}
		v, err := readField(p)
		if err != nil {
			u.errorPage(w, r, s, http.StatusBadRequest, "The form could not be read", "A field was too long or cut short.")
			return nil, false
		}
		if name == "_csrf" {
			if !sameToken(v, s.CSRF) {
				u.csrfRefused(w, r, s)
				return nil, false
			}
			csrf = true
			continue
		}
		if field != nil && !field(name, v) {
			return nil, false
		}
	}
}

func readField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, maxUploadField+1))
	if err == nil && len(b) > maxUploadField {
		err = errors.New("field too long")
	}
	return string(b), err
}

// formKey is a form's idempotency key k, scoped to the web UI; "" when k
// is not 1–100 visible ASCII characters.
func formKey(k string) string {
	if k == "" || len(k) > 100 {
		return ""
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return ""
		}
	}
	return "ui-" + k
}

func (u *UI) csrfRefused(w http.ResponseWriter, r *http.Request, s *session) {
	u.errorPage(w, r, s, http.StatusForbidden, "The form could not be accepted",
		"The form was missing its security token or it did not match your session, so nothing was saved. "+
			"Go back, reload the page and try again.")
}

// uploadRefused shows the engagement page again with why the upload was
// refused (nothing was stored), or the error page for what is not about
// the upload.
func (u *UI) uploadRefused(w http.ResponseWriter, r *http.Request, s *session, id string, err error) {
	var msg string
	status := http.StatusUnprocessableEntity
	var invalid *domain.ValidationError
	var malformed *domain.MalformedError
	var transition *domain.TransitionError
	switch {
	case errors.Is(err, domain.ErrTooLarge):
		status, msg = http.StatusRequestEntityTooLarge,
			"The file is too large: documents may be at most "+sizeText(u.svc.MaxDocumentSize())+"."
	case errors.Is(err, domain.ErrUnsupportedMediaType):
		status, msg = http.StatusUnsupportedMediaType, "This kind of file cannot be attached ("+err.Error()+
			"). Attach a PDF, an Office or OpenDocument file, an image (PNG, JPEG, GIF, WebP), plain text or CSV."
	case errors.As(err, &invalid):
		var parts []string
		for _, f := range invalid.Fields {
			parts = append(parts, uploadLabel(f.Field)+" "+f.Message)
		}
		msg = strings.Join(parts, "; ") + "."
	case errors.As(err, &malformed):
		status, msg = http.StatusBadRequest, malformed.Error()
	case errors.As(err, &transition):
		msg = transition.Error()
	default:
		u.failed(w, r, s, err)
		return
	}
	d, derr := u.engagementData(r.Context(), s, id, domain.Window{}, historySel{}, nil)
	if derr != nil {
		u.failed(w, r, s, derr)
		return
	}
	if d.Upload != nil {
		d.Upload.Error = "Not attached, nothing was stored: " + msg
	}
	d.Title = "Check the upload: " + d.E.Title()
	u.render(w, status, "engagement", d)
}

// uploadLabel names a field of the upload in words.
func uploadLabel(field string) string {
	switch strings.TrimPrefix(field, "data.") {
	case "name":
		return "The file's name"
	case "file":
		return "File:"
	case "supersedes":
		return "The version it replaces"
	case occurredAt:
		return "The date"
	}
	return field
}

// download: GET /engagements/{id}/documents/{document_id}, the bytes as
// the API serves them.
func (u *UI) download(w http.ResponseWriter, r *http.Request, s *session) {
	id, docID := r.PathValue("id"), r.PathValue("document_id")
	if domain.CheckID(id) != nil || domain.CheckID(docID) != nil {
		u.documentMissing(w, r, s)
		return
	}
	d, body, err := u.svc.OpenDocument(r.Context(), id, docID)
	if errors.Is(err, domain.ErrNotFound) {
		u.documentMissing(w, r, s)
		return
	}
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	defer body.Close()
	for _, kv := range d.DownloadHeaders() {
		w.Header().Set(kv[0], kv[1])
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(uploadTimeout))
	if _, err := io.Copy(w, body); err != nil {
		u.log.Error("document download failed", "engagement_id", id, "document_id", docID, "err", err)
		panic(http.ErrAbortHandler) // end the response short: never a complete, wrong file
	}
}

func (u *UI) documentMissing(w http.ResponseWriter, r *http.Request, s *session) {
	u.errorPage(w, r, s, http.StatusNotFound, "Document not found",
		"This engagement has no document at this address. Its page lists the documents attached to it.")
}
