package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Documents are evidence attached to an engagement (a signed MOU's scan, a
// renewal letter): the bytes live in an object store, an
// engagement.document_attached event records their name, media type, size
// and SHA-256, and so the hash chain covers them. Documents are never
// deleted; a new version supersedes an earlier one.

// Limits of documents.
const (
	// MaxFileName is the most characters of a document's name.
	MaxFileName = 255
	// MaxDocumentSize is the largest size an event may record: the ceiling
	// of serve's --max-document-size.
	MaxDocumentSize = 1 << 30
)

// Document media types, as recorded and served.
const (
	MediaPDF  = "application/pdf"
	MediaDOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	MediaXLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	MediaPPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
	MediaDOC  = "application/msword"
	MediaXLS  = "application/vnd.ms-excel"
	MediaODT  = "application/vnd.oasis.opendocument.text"
	MediaODS  = "application/vnd.oasis.opendocument.spreadsheet"
	MediaPNG  = "image/png"
	MediaJPEG = "image/jpeg"
	MediaGIF  = "image/gif"
	MediaWebP = "image/webp"
	MediaText = "text/plain"
	MediaCSV  = "text/csv"
)

// DocumentMediaTypes is the allow-list of documents' media types: PDF,
// Office and OpenDocument files, images, plain text and CSV.
var DocumentMediaTypes = []string{MediaPDF, MediaDOCX, MediaXLSX, MediaPPTX, MediaDOC, MediaXLS, MediaODT, MediaODS,
	MediaPNG, MediaJPEG, MediaGIF, MediaWebP, MediaText, MediaCSV}

// documentExtensions maps file name extensions to the allowed media types,
// for uploads whose client did not say (or said application/octet-stream).
var documentExtensions = map[string]string{
	".pdf": MediaPDF, ".docx": MediaDOCX, ".xlsx": MediaXLSX, ".pptx": MediaPPTX, ".doc": MediaDOC,
	".xls": MediaXLS, ".odt": MediaODT, ".ods": MediaODS, ".png": MediaPNG, ".jpg": MediaJPEG,
	".jpeg": MediaJPEG, ".gif": MediaGIF, ".webp": MediaWebP, ".txt": MediaText, ".csv": MediaCSV,
}

// MediaTypeByName is the allowed media type a file name's extension stands
// for, "" when it names none.
func MediaTypeByName(name string) string {
	return documentExtensions[strings.ToLower(path.Ext(name))]
}

// AllowedMediaType reports whether t (a bare type, without parameters) is on
// the allow-list.
func AllowedMediaType(t string) bool { return slices.Contains(DocumentMediaTypes, t) }

// Document is one attached document as folded from its event.
type Document struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	// Supersedes is the document this one replaces; SupersededBy the one
	// that replaced it ("" while it is current).
	Supersedes   string `json:"supersedes,omitempty"`
	SupersededBy string `json:"superseded_by,omitempty"`
	// EventID, Actor, OccurredAt and RecordedAt are those of its
	// engagement.document_attached event: who attached it, and when.
	EventID    string    `json:"event_id"`
	Actor      string    `json:"actor"`
	OccurredAt time.Time `json:"occurred_at"`
	RecordedAt time.Time `json:"recorded_at"`
}

// Documents is the engagement's documents, oldest first (see View).
func (e *Engagement) Documents() []Document { return e.v.Documents }

// Document finds one of the engagement's documents by id.
func (e *Engagement) Document(id string) (Document, bool) {
	for _, d := range e.v.Documents {
		if d.ID == id {
			return d, true
		}
	}
	return Document{}, false
}

// CheckFileName says what is wrong with a document's name, "" when nothing:
// 1 to MaxFileName characters of valid UTF-8, no control or invisible
// formatting characters, no path separator (/ or \) and no "..", so that the
// name can never point outside wherever someone saves the file.
func CheckFileName(name string) string {
	if p := checkText(name, MaxFileName, false); p != "" {
		return p
	}
	if name != strings.TrimSpace(name) {
		return "must not start or end with spaces"
	}
	switch {
	case strings.ContainsAny(name, `/\`):
		return "must be a file name, without a path (no / or \\)"
	case strings.Contains(name, ".."):
		return `must not contain ".."`
	}
	for _, r := range name {
		if unicode.Is(unicode.Cf, r) {
			return "must not contain invisible formatting characters"
		}
	}
	return ""
}

// fileName accepts a document's name (see CheckFileName).
func fileName(raw json.RawMessage) (any, string, bool) {
	var s string
	if err := unmarshalString(raw, &s); err != nil {
		return nil, "must be a string", true
	}
	if p := CheckFileName(s); p != "" {
		return nil, p, false
	}
	return s, "", false
}

// digest accepts a SHA-256 as 64 lower-case hex characters.
func digest(raw json.RawMessage) (any, string, bool) {
	var s string
	if err := unmarshalString(raw, &s); err != nil {
		return nil, "must be a string", true
	}
	if len(s) != 64 || strings.Trim(s, "0123456789abcdef") != "" {
		return nil, "must be a SHA-256 as 64 lower-case hex characters", false
	}
	return s, "", false
}

// count accepts a whole number from 1 to max.
func count(max int64) parser {
	return func(raw json.RawMessage) (any, string, bool) {
		var n json.Number // (which would also take a number in a string)
		if len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
			return nil, "must be a whole number", true
		}
		v, err := n.Int64()
		if err != nil {
			return nil, "must be a whole number", true
		}
		if v < 1 || v > max {
			return nil, fmt.Sprintf("must be between 1 and %d", max), false
		}
		return v, "", false
	}
}

// countField is a whole number from 1 to max.
func countField(name, label string, max int64) Field {
	return Field{Name: name, Required: true, Label: label, Input: InputCount, Max: int(max), parse: count(max)}
}

// Errors of uploads. The HTTP layer maps them to 413 and 415.
var (
	// ErrTooLarge means a document is larger than the limit.
	ErrTooLarge = errors.New("document too large")
	// ErrUnsupportedMediaType means a document's media type is not on the
	// allow-list, or its content is not of the type it was declared as.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
)

// documentFields are the fields of engagement.document_attached.
func documentFields() []Field {
	return []Field{
		{Name: "document_id", Required: true, Label: "Document", parse: uuidText},
		{Name: "name", Required: true, Label: "Name", Max: MaxFileName, parse: fileName},
		selectField("media_type", "Type", true, DocumentMediaTypes...),
		countField("size", "Size (bytes)", MaxDocumentSize),
		{Name: "sha256", Required: true, Label: "SHA-256", Max: 64, Pattern: "^[0-9a-f]{64}$", parse: digest},
		{Name: "supersedes", Label: "Supersedes", parse: uuidText},
	}
}

// checkDocument: a new document id, and an earlier, current document of the
// same engagement as what it supersedes.
func checkDocument(r rules, v *ValidationError) {
	if id, _ := r.values["document_id"].(string); id != "" {
		if _, ok := r.e.Document(id); ok {
			v.add("data.document_id", "is already attached to this engagement")
		}
	}
	old, ok := r.values["supersedes"].(string)
	if !ok {
		return
	}
	d, found := r.e.Document(old)
	switch {
	case !found:
		v.add("data.supersedes", "is not a document of this engagement")
	case d.SupersededBy != "":
		v.add("data.supersedes", "is already superseded by %s; supersede that version instead", d.SupersededBy)
	}
}

// applyDocument adds the document to the engagement's list and marks the one
// it supersedes.
func applyDocument(e *Engagement, ev Event, f map[string]any) {
	d := Document{EventID: ev.ID, Actor: ev.Actor, OccurredAt: ev.OccurredAt, RecordedAt: ev.RecordedAt}
	get(f, "document_id", &d.ID)
	get(f, "name", &d.Name)
	get(f, "media_type", &d.MediaType)
	get(f, "sha256", &d.SHA256)
	get(f, "supersedes", &d.Supersedes)
	d.Size, _ = f["size"].(int64)
	docs := e.v.Documents
	if i := slices.IndexFunc(docs, func(x Document) bool { return x.ID == d.Supersedes }); i >= 0 {
		// A copy: readers and checkpoints may hold the old list.
		docs = slices.Clone(docs)
		docs[i].SupersededBy = d.ID
	}
	e.v.Documents = append(docs, d)
}

// ETag is the document's entity tag: its SHA-256, quoted.
func (d Document) ETag() string { return `"` + d.SHA256 + `"` }

// DownloadHeaders are the response header fields a download of d is served
// with, by the API and the web pages alike: its media type, its size, its
// SHA-256 as the ETag, an attachment with its name (ContentDisposition), no
// sniffing, and a sandbox for a browser that opens it anyway.
func (d Document) DownloadHeaders() [][2]string {
	return [][2]string{
		{"Content-Type", d.MediaType},
		{"Content-Disposition", ContentDisposition(d.Name)},
		{"Content-Length", strconv.FormatInt(d.Size, 10)},
		{"ETag", d.ETag()},
		{"X-Content-Type-Options", "nosniff"},
		{"Content-Security-Policy", "sandbox; default-src 'none'"},
		{"Cache-Control", "private, no-cache"},
	}
}

// ContentDisposition is an attachment header value for a file called name
// (RFC 6266): filename* carries the name in UTF-8, percent-encoded (RFC
// 8187), and filename an ASCII fallback for old clients, in which anything
// but letters, digits and " .-_()" is an underscore. Path separators and
// control characters, which a stored name never holds, become underscores
// in both, and so does "..".
func ContentDisposition(name string) string {
	var fallback, encoded strings.Builder
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' || unicode.Is(unicode.Cf, r) {
			r = '_'
		}
		switch {
		case r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(" .-_()", r)):
			fallback.WriteRune(r)
		default:
			fallback.WriteByte('_')
		}
		if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("!#$&+-.^_`|~", r)) {
			encoded.WriteRune(r)
			continue
		}
		var b [utf8.UTFMax]byte
		for _, c := range b[:utf8.EncodeRune(b[:], r)] {
			fmt.Fprintf(&encoded, "%%%02X", c)
		}
	}
	f, e := strings.ReplaceAll(fallback.String(), "..", "__"), strings.ReplaceAll(encoded.String(), "..", "__")
	if strings.Trim(f, "_ .") == "" {
		f, e = "document", "document"
	}
	return `attachment; filename="` + f + `"; filename*=UTF-8''` + e
}
