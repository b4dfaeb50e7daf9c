package eventstore

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendCloudEvent appends ce as json.Marshal encodes it, byte for byte, and
// reports whether it could: it writes the common case by hand (plain ASCII
// text, times within years 0000–9999, compact data without characters
// encoding/json escapes) and gives up on anything else, for the caller to
// fall back to json.Marshal. Reflection was most of what Encode cost.
func appendCloudEvent(b []byte, ce *CloudEvent) ([]byte, bool) {
	ok := true
	str := func(name, v string) {
		b = append(b, name...)
		ok = ok && plainString(v)
		b = append(b, '"')
		b = append(b, v...)
		b = append(b, '"')
	}
	at := func(name string, t time.Time) {
		b = append(b, name...)
		if y := t.Year(); y < 0 || y > 9999 {
			ok = false // json.Marshal's error, not ours
			return
		}
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	str(`{"specversion":`, ce.SpecVersion)
	str(`,"id":`, ce.ID)
	str(`,"source":`, ce.Source)
	str(`,"type":`, ce.Type)
	str(`,"subject":`, ce.Subject)
	at(`,"time":`, ce.Time)
	str(`,"datacontenttype":`, ce.DataContentType)
	if ce.DataSchema != "" {
		str(`,"dataschema":`, ce.DataSchema)
	}
	b = append(b, `,"data":`...)
	n := len(b)
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, ce.Data); err != nil {
		return nil, false
	}
	b = buf.Bytes()
	ok = ok && !needsHTMLEscape(b[n:])
	at(`,"recordedat":`, ce.RecordedAt)
	str(`,"actor":`, ce.Actor)
	str(`,"kind":`, ce.Kind)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(ce.Version), 10)
	if ce.CorrelationID != "" {
		str(`,"correlationid":`, ce.CorrelationID)
	}
	if ce.CausationID != "" {
		str(`,"causationid":`, ce.CausationID)
	}
	b = append(b, '}')
	return b, ok
}

// plainString reports whether json.Marshal writes s as it is between quotes:
// printable ASCII other than the quote, the backslash and the characters it
// escapes for HTML, or other valid UTF-8 than U+2028 and U+2029.
func plainString(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}

// needsHTMLEscape reports whether compact JSON holds a character that
// json.Marshal escapes in a json.RawMessage: <, >, &, U+2028 or U+2029.
func needsHTMLEscape(b []byte) bool {
	return bytes.ContainsAny(b, "<>&\u2028\u2029")
}
