package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/iom-who/engagements/domain"
	"github.com/labstack/echo/v4"
)

// MaxBody is the largest request body accepted (413 above).
const MaxBody = 1 << 20

// maxDepth bounds JSON nesting; no request needs more than a few levels.
const maxDepth = 32

// readJSON reads the body and checks it is one well-formed JSON object: not
// empty, sent as application/json or a +json type (415 otherwise, and
// without a Content-Type too), valid UTF-8, no duplicate keys, not nested
// too deep, nothing after it. It returns the raw bytes.
func readJSON(c echo.Context) ([]byte, error) {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, echo.NewHTTPError(http.StatusUnsupportedMediaType,
				fmt.Sprintf("Content-Type %q is not supported; send application/json", ct))
		}
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, echo.ErrStatusRequestEntityTooLarge
		}
		return nil, badRequest("the request body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("the request body is empty; send a JSON object")
	}
	if ct == "" {
		// Only a request without content may go without a Content-Type.
		return nil, echo.NewHTTPError(http.StatusUnsupportedMediaType,
			"the request body has no Content-Type; send application/json")
	}
	if !utf8.Valid(body) {
		return nil, badRequest("the request body is not valid UTF-8")
	}
	if err := checkJSON(body); err != nil {
		return nil, badRequest(err.Error())
	}
	return body, nil
}

// checkJSON checks that body is one JSON value: an object, with no duplicate
// keys at any level, at most maxDepth deep, and nothing after. jsontext reads
// it and checks the syntax and the duplicate names; this bounds the depth,
// refuses what follows the object and words the errors for the client.
func checkJSON(body []byte) error {
	r := newReader(body, readOptions)
	defer r.release()
	dec := &r.dec
	if tok, err := dec.ReadToken(); err != nil {
		return syntaxError(err)
	} else if tok.Kind() != '{' {
		return errors.New("the body must be a JSON object")
	}
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return syntaxError(err)
		}
		depth := dec.StackDepth()
		if k := tok.Kind(); (k == '{' || k == '[') && depth > maxDepth {
			return fmt.Errorf("JSON nested deeper than %d levels", maxDepth)
		}
		if depth == 0 {
			break
		}
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

// syntaxError words a jsontext error for the client: what is wrong and,
// for a duplicate, which key.
func syntaxError(err error) error {
	var serr *jsontext.SyntacticError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the JSON document is incomplete")
	case errors.Is(err, jsontext.ErrDuplicateName) && errors.As(err, &serr):
		return fmt.Errorf("duplicate key %q", truncate(serr.JSONPointer.LastToken(), 64))
	default:
		return fmt.Errorf("the body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "jsontext: "))
	}
}

// reader is a jsontext.Decoder reading straight from a byte slice (through a
// bytes.Buffer, which jsontext reads without copying), pooled: a Decoder
// is large, and every write request reads its body twice.
type reader struct {
	buf bytes.Buffer
	dec jsontext.Decoder
}

var readers = sync.Pool{New: func() any { return new(reader) }}

// readOptions are the request bodies' jsontext options. Duplicate names are
// refused (jsontext's default). Invalid UTF-8 is allowed because readJSON
// has already refused raw invalid bytes, so what is left are escaped lone
// surrogates (\ud800): encoding/json read them as U+FFFD, and the domain
// refuses them field by field (422), as it did.
var readOptions = jsontext.AllowInvalidUTF8(true)

// splitOptions are members' options: the body has been checked, names
// included, by checkJSON.
var splitOptions = jsonv2.JoinOptions(readOptions, jsontext.AllowDuplicateNames(true))

// newReader is a pooled reader of body with opts; release it after use.
func newReader(body []byte, opts jsontext.Options) *reader {
	r := readers.Get().(*reader)
	r.buf = *bytes.NewBuffer(body)
	r.dec.Reset(&r.buf, opts)
	return r
}

// release returns r to the pool.
func (r *reader) release() {
	r.buf = bytes.Buffer{} // holding on to no body
	r.dec.Reset(&r.buf)
	readers.Put(r)
}

// fields splits a JSON object (already checked by readJSON) into its
// members and refuses members other than allowed.
func fields(body []byte, allowed ...string) (map[string]json.RawMessage, error) {
	m, err := members(body)
	if err != nil {
		return nil, badRequest("the body is not a JSON object")
	}
	var unknown []domain.FieldError
	for k := range m {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, domain.FieldError{Field: truncate(k, 64), Message: "unknown field"})
		}
	}
	if len(unknown) > 0 {
		slices.SortFunc(unknown, func(a, b domain.FieldError) int { return strings.Compare(a.Field, b.Field) })
		return nil, badRequest("the body has fields the API does not know", unknown...)
	}
	return m, nil
}

// errNotObject is members' answer to a body that is not one JSON object.
var errNotObject = errors.New("not a JSON object")

// members splits a JSON object that checkJSON accepted into its members,
// as json.Unmarshal into a map of json.RawMessage does, with the values left
// in body rather than copied.
func members(body []byte) (map[string]json.RawMessage, error) {
	r := newReader(body, splitOptions)
	defer r.release()
	dec := &r.dec
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, errNotObject
	}
	m := make(map[string]json.RawMessage, 4)
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		key := name.String()
		v, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		end := int(dec.InputOffset())
		m[key] = body[end-len(v) : end : end]
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '}' {
		return nil, errNotObject
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, errNotObject
	}
	return m, nil
}

// stringField decodes an optional string member; a non-string is a 400.
func stringField(m map[string]json.RawMessage, name string) (string, bool, error) {
	raw := jsontext.Value(m[name])
	switch raw.Kind() {
	case 0, 'n': // absent, or null
		return "", false, nil
	case '"':
		var buf [64]byte
		s, err := jsontext.AppendUnquote(buf[:0], raw)
		// The one error a well-formed string can have is an escaped lone
		// surrogate, which reads as U+FFFD, as encoding/json reads it.
		if err == nil || raw.IsValid(readOptions) {
			return string(s), true, nil
		}
	}
	return "", false, badRequest("a field has the wrong type", domain.FieldError{Field: name, Message: "must be a string"})
}

// parseTime reads occurred_at: RFC 3339, or a date YYYY-MM-DD (midnight UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return checkYear(t.UTC())
	}
	if t, err := time.Parse(domain.DateLayout, s); err == nil {
		return checkYear(t)
	}
	return time.Time{}, errors.New("must be an RFC 3339 time or a date YYYY-MM-DD")
}

// parseOccurred reads occurred_at: RFC 3339, a date YYYY-MM-DD (midnight
// UTC), or YYYY-MM or YYYY when the record knows no more (the first instant
// of that month or year, with its precision).
func parseOccurred(s string) (time.Time, string, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		t, err := checkYear(t.UTC())
		return t, "", err
	}
	if len(s) == 4 || len(s) == 7 || len(s) == 10 {
		if t, precision, err := domain.ParsePartialDate(s); err == nil {
			return t, precision, nil
		} else if strings.Contains(err.Error(), "year must be") {
			return time.Time{}, "", err
		}
	}
	return time.Time{}, "", errors.New("must be an RFC 3339 time, a date YYYY-MM-DD, or YYYY-MM or YYYY when no more is known")
}

// checkYear refuses times outside the years the domain accepts. It must run
// here, not only in the domain: 0001-01-01T00:00:00Z is Go's zero time, which
// the command path reads as "not given" and would silently replace with now.
func checkYear(t time.Time) (time.Time, error) {
	if y := t.Year(); y < domain.MinYear || y > domain.MaxYear {
		return time.Time{}, fmt.Errorf("year must be between %d and %d", domain.MinYear, domain.MaxYear)
	}
	return t, nil
}

// encodeJSON encodes v as echo's c.JSON writes it (HTML-safe, with a final
// newline), indented when pretty: for handlers that encode before they answer.
func encodeJSON(v any, pretty bool) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if pretty {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// echoJSON makes jsontext write what c.JSON writes with encoding/json:
// <, >, & and U+2028/U+2029 escaped. Invalid UTF-8 it writes as U+FFFD, where
// encoding/json writes the escape \ufffd; writeJSON's callers write strings
// that are valid UTF-8 (canonical ids, allow-listed types).
var echoJSON = jsonv2.JoinOptions(jsontext.EscapeForHTML(true), jsontext.EscapeForJS(true), jsontext.AllowInvalidUTF8(true))

// writer is a jsontext.Encoder writing into a bytes.Buffer, pooled.
type writer struct {
	buf bytes.Buffer
	enc jsontext.Encoder
}

var writers = sync.Pool{New: func() any { return new(writer) }}

// writeJSON is the JSON value of tokens as c.JSON writes it: escaped as
// echoJSON says, with a final newline (jsontext's, as encoding/json's).
func writeJSON(tokens ...jsontext.Token) ([]byte, error) {
	w := writers.Get().(*writer)
	defer func() {
		w.buf = bytes.Buffer{} // holding on to no answer
		w.enc.Reset(&w.buf)
		writers.Put(w)
	}()
	w.buf = *bytes.NewBuffer(make([]byte, 0, 128))
	w.enc.Reset(&w.buf, echoJSON)
	for _, t := range tokens {
		if err := w.enc.WriteToken(t); err != nil {
			return nil, err
		}
	}
	return w.buf.Bytes(), nil
}

// prettyJSON reports whether the client asked for indented JSON (?pretty),
// which echo's c.JSON honours.
func prettyJSON(c echo.Context) bool {
	_, ok := c.QueryParams()["pretty"]
	return ok
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
