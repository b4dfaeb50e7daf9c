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
	"time"
	"unicode/utf8"

	"github.com/iom-who/engagements/domain"
	"github.com/labstack/echo/v4"
)

// MaxBody is the largest request body accepted (413 above).
const MaxBody = 1 << 20

// maxDepth bounds JSON nesting; no request needs more than a few levels.
const maxDepth = 32

// readJSON reads the body and checks it is one well-formed JSON object: valid
// UTF-8, no duplicate keys, not nested too deep, nothing after it. It
// returns the raw bytes.
func readJSON(c echo.Context) ([]byte, error) {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" {
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
	if !utf8.Valid(body) {
		return nil, badRequest("the request body is not valid UTF-8")
	}
	if err := checkJSON(body); err != nil {
		return nil, badRequest(err.Error())
	}
	return body, nil
}

// checkJSON checks that body is one JSON value: an object, with no duplicate
// keys at any level, at most maxDepth deep, and nothing after.
//
// Valid JSON, the usual case, is checked by one pass over the bytes
// (checkShape) that allocates nothing for small objects; anything else goes
// through walkTokens, which gives the same answer in more time and with
// encoding/json's description of the syntax error.
func checkJSON(body []byte) error {
	if !json.Valid(body) {
		return walkTokens(body)
	}
	return checkShape(body)
}

// smallObject is how many keys an object may have before checkShape looks
// its keys up in a map rather than comparing with each one.
const smallObject = 16

// checkShape is checkJSON for a body that json.Valid accepted: it finds the
// first problem walkTokens would find, in document order.
func checkShape(body []byte) error {
	type frame struct {
		object bool
		start  int                 // the object's first key in keys
		big    map[string]struct{} // the object's keys once it has many
	}
	var (
		frameBuf  [8]frame
		keyBuf    [32][]byte
		stack     = frameBuf[:0]
		keys      = keyBuf[:0] // the open objects' keys, innermost last
		expectKey bool
	)
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return errors.New("the body must be a JSON object")
	}
	for ; i < len(body); i++ {
		switch c := body[i]; c {
		case '{', '[':
			if len(stack) >= maxDepth {
				return fmt.Errorf("JSON nested deeper than %d levels", maxDepth)
			}
			stack = append(stack, frame{object: c == '{', start: len(keys)})
			expectKey = c == '{'
		case '}', ']':
			keys = keys[:stack[len(stack)-1].start]
			stack = stack[:len(stack)-1]
			expectKey = false
		case ',':
			expectKey = stack[len(stack)-1].object
		case '"':
			end := stringEnd(body, i)
			if expectKey {
				key := keyOf(body[i : end+1])
				top := &stack[len(stack)-1]
				if seen(keys[top.start:], top.big, key) {
					return fmt.Errorf("duplicate key %q", truncate(string(key), 64))
				}
				switch n := len(keys) - top.start; {
				case n < smallObject:
					keys = append(keys, key)
				case top.big == nil:
					top.big = make(map[string]struct{}, 2*smallObject)
					for _, k := range keys[top.start:] {
						top.big[string(k)] = struct{}{}
					}
					fallthrough
				default:
					top.big[string(key)] = struct{}{}
				}
				expectKey = false
			}
			i = end
		}
	}
	return nil
}

// seen reports whether key is among an object's keys so far: small, or, once
// the object has many, big.
func seen(small [][]byte, big map[string]struct{}, key []byte) bool {
	if big != nil {
		_, ok := big[string(key)]
		return ok
	}
	for _, k := range small {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

// keyOf is the text of a valid JSON string literal (quotes included) as
// encoding/json decodes it; without escapes or invalid UTF-8 that is the
// literal itself, without copying.
func keyOf(lit []byte) []byte {
	inner := lit[1 : len(lit)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return inner
	}
	var s string
	_ = json.Unmarshal(lit, &s) // valid: checked by json.Valid
	return []byte(s)
}

// stringEnd is the index of the quote that ends the valid JSON string
// literal starting at body[start].
func stringEnd(body []byte, start int) int {
	for i := start + 1; i < len(body); i++ {
		switch body[i] {
		case '\\':
			i++ // the escaped character; \uXXXX's digits need no care
		case '"':
			return i
		}
	}
	return len(body) - 1
}

// skipSpace is the index of the first byte at or after i that is not JSON
// white space.
func skipSpace(body []byte, i int) int {
	for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r') {
		i++
	}
	return i
}

// walkTokens is checkJSON token by token with encoding/json's decoder, whose
// errors say what is wrong with a document that is not valid JSON.
func walkTokens(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		keys     map[string]bool
		isObject bool
		wantKey  bool
	}
	var stack []*frame
	first := true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 || first {
				return errors.New("the JSON document is incomplete")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("the body is not valid JSON: %v", err)
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return errors.New("the body must be a JSON object")
			}
		} else if len(stack) == 0 {
			return errors.New("unexpected data after the JSON object")
		}
		first = false
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.isObject && top.wantKey {
			if key, ok := tok.(string); ok {
				if top.keys[key] {
					return fmt.Errorf("duplicate key %q", truncate(key, 64))
				}
				top.keys[key] = true
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxDepth {
				return fmt.Errorf("JSON nested deeper than %d levels", maxDepth)
			}
			if top != nil && top.isObject {
				top.wantKey = true
			}
			f := &frame{isObject: tok == json.Delim('{'), wantKey: true}
			if f.isObject {
				f.keys = make(map[string]bool)
			}
			stack = append(stack, f)
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if top != nil && top.isObject {
				top.wantKey = true
			}
		}
	}
}

// fields splits a JSON object (already checked by readJSON) into its
// members and refuses members other than allowed.
func fields(body []byte, allowed ...string) (map[string]json.RawMessage, error) {
	m, ok := members(body)
	if !ok {
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, badRequest("the body is not a JSON object")
		}
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

// members splits a JSON object that checkJSON accepted into its members,
// as json.Unmarshal into a map of json.RawMessage does, but in one pass and
// with the values left in body rather than copied. ok is false if body is
// not such an object after all.
func members(body []byte) (m map[string]json.RawMessage, ok bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	m = make(map[string]json.RawMessage, 4)
	if i = skipSpace(body, i+1); i < len(body) && body[i] == '}' {
		return m, true
	}
	for i < len(body) && body[i] == '"' {
		end := stringEnd(body, i)
		if end <= i {
			return nil, false
		}
		key := keyOf(body[i : end+1])
		if i = skipSpace(body, end+1); i >= len(body) || body[i] != ':' {
			return nil, false
		}
		i = skipSpace(body, i+1)
		vend := valueEnd(body, i)
		if vend <= i {
			return nil, false
		}
		m[string(key)] = body[i:vend:vend]
		if i = skipSpace(body, vend); i >= len(body) {
			return nil, false
		}
		switch body[i] {
		case '}':
			return m, true
		case ',':
			i = skipSpace(body, i+1)
		default:
			return nil, false
		}
	}
	return nil, false
}

// valueEnd is the index just after the valid JSON value starting at body[i].
func valueEnd(body []byte, i int) int {
	if i >= len(body) {
		return i
	}
	switch body[i] {
	case '"':
		return stringEnd(body, i) + 1
	case '{', '[':
		depth := 0
		for j := i; j < len(body); j++ {
			switch body[j] {
			case '"':
				j = stringEnd(body, j)
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(body)
	}
	j := i // a number, true, false or null: up to the next delimiter
	for j < len(body) && !strings.ContainsRune(",}] \t\n\r", rune(body[j])) {
		j++
	}
	return j
}

// stringField decodes an optional string member; a non-string is a 400.
func stringField(m map[string]json.RawMessage, name string) (string, bool, error) {
	raw, ok := m[name]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return "", false, nil
	}
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 && utf8.Valid(inner) {
			return string(inner), true, nil // what json.Unmarshal gives, without its reflection
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, badRequest("a field has the wrong type", domain.FieldError{Field: name, Message: "must be a string"})
	}
	return s, true, nil
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
