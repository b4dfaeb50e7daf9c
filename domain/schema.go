package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Event data has a schema version per type, stored with every event as its
// CloudEvents dataschema (see DataSchema). When a type's shape changes,
// its version goes up and an upcaster turns the older shape into the newer
// one; Upcast is the one place readers do that.
//
// History of the shapes:
//   - engagement.corrected v1 carried the corrected fields beside corrects and
//     reason, so the reason of agreement.terminated or initiative.left could
//     not be corrected (it clashed with the correction's own reason). v2 nests
//     them: {"corrects", "reason", "fields": {...}}.
//   - agreement.renewed v1 without expires_on made the agreement open-ended,
//     so a renewal that did not mention the expiry silently cleared it. v2
//     keeps the expiry unless it gives a new one or term "open-ended", and
//     may carry notice_days; a v1 renewal without expires_on reads as v2
//     with term "open-ended", which is what it meant.
var schemaVersions = map[EventType]int{
	EngagementCorrected: 2,
	AgreementRenewed:    2,
}

// upcasters[t][v] turns version v of t's data into version v+1.
var upcasters = map[EventType]map[int]func(map[string]json.RawMessage) (map[string]json.RawMessage, error){
	EngagementCorrected: {1: correctedV1ToV2},
	AgreementRenewed:    {1: renewedV1ToV2},
}

// SchemaVersion is the current data schema version of t.
func SchemaVersion(t EventType) int {
	if v, ok := schemaVersions[t]; ok {
		return v
	}
	return 1
}

// SchemaPath is the path of t's current data schema, relative to the
// service's public URL: /schemas/<type>/v<N>. Releases before the public URL
// existed stored it as the dataschema itself; CloudEvents 1.0 wants an
// absolute URI there (see DataSchema).
func SchemaPath(t EventType) string {
	return schemaPath(t, SchemaVersion(t))
}

func schemaPath(t EventType, v int) string {
	return "/schemas/" + string(t) + "/v" + strconv.Itoa(v)
}

// SchemaURNPrefix starts the dataschema of events stored by a service with
// no public URL: urn:engagements:schema:<type>:v<N>.
const SchemaURNPrefix = "urn:engagements:schema:"

// DataSchema is the dataschema attribute of t's current version under base,
// the service's public URL (scheme, host and any path prefix, no trailing
// slash): base + SchemaPath(t), or, with no base, the URN
// urn:engagements:schema:<type>:v<N>. Either is an absolute URI.
func DataSchema(base string, t EventType) string {
	if base == "" {
		return SchemaURNPrefix + string(t) + ":v" + strconv.Itoa(SchemaVersion(t))
	}
	return base + SchemaPath(t)
}

// ParseDataSchema reads a dataschema in any of the forms the service has
// stored: urn:engagements:schema:<type>:v<N>, an absolute http or https URL
// whose path ends in /schemas/<type>/v<N> (under whatever public URL was set
// then), or the relative /schemas/<type>/v<N> of earlier releases.
func ParseDataSchema(s string) (EventType, int, error) {
	var typ, ver string
	ok := false
	if rest, isURN := strings.CutPrefix(s, SchemaURNPrefix); isURN {
		typ, ver, ok = strings.Cut(rest, ":v")
	} else if i := strings.LastIndex(s, "/schemas/"); i >= 0 && (i == 0 || isHTTPBase(s[:i])) {
		typ, ver, ok = strings.Cut(s[i+len("/schemas/"):], "/v")
	}
	if !ok {
		return "", 0, fmt.Errorf("dataschema %q is not %s<type>:v<N> or [<base URL>]/schemas/<type>/v<N>",
			truncate(s, 80), SchemaURNPrefix)
	}
	t, err := ParseEventType(typ)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(ver)
	if err != nil || n < 1 || n > SchemaVersion(t) {
		return "", 0, fmt.Errorf("dataschema %q: version must be 1 to %d", truncate(s, 80), SchemaVersion(t))
	}
	return t, n, nil
}

// isHTTPBase tells whether base is a public URL a dataschema may start
// with: http or https, a host, no query or fragment.
func isHTTPBase(base string) bool {
	return CheckPublicURL(base) == nil
}

// CheckPublicURL checks a public URL the service names itself by: absolute
// http or https with a host, no query, fragment, user info or trailing slash.
func CheckPublicURL(base string) error {
	u, err := url.Parse(base)
	switch {
	case err != nil:
		return fmt.Errorf("public URL %q: %w", truncate(base, 80), err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("public URL %q must be an absolute http or https URL", truncate(base, 80))
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(base, "/") ||
		strings.ContainsAny(base, "?#"):
		return fmt.Errorf("public URL %q must have no query, fragment, user info or trailing slash", truncate(base, 80))
	}
	return nil
}

// Upcast turns data of version v of t into the current shape.
func Upcast(t EventType, v int, data json.RawMessage) (json.RawMessage, error) {
	current := SchemaVersion(t)
	if v == current {
		return data, nil
	}
	if v < 1 || v > current {
		return nil, fmt.Errorf("%s has no data schema version %d", t, v)
	}
	m, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	for ; v < current; v++ {
		up, ok := upcasters[t][v]
		if !ok {
			return nil, fmt.Errorf("no upcaster for %s v%d", t, v)
		}
		if m, err = up(m); err != nil {
			return nil, fmt.Errorf("upcast %s v%d: %w", t, v, err)
		}
	}
	return json.Marshal(m)
}

// correctedV1ToV2 moves the corrected fields under "fields".
func correctedV1ToV2(m map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	fields := make(map[string]json.RawMessage)
	for k, v := range m {
		if k != "corrects" && k != "reason" {
			fields[k] = v
			delete(m, k)
		}
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	m["fields"] = raw
	return m, nil
}

// renewedV1ToV2 says outright what a v1 renewal without expires_on meant:
// term "open-ended".
func renewedV1ToV2(m map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	if _, ok := m["expires_on"]; !ok {
		m["term"] = json.RawMessage(`"` + TermOpenEnded + `"`)
	}
	return m, nil
}

// isCorrectionV1 tells a v1-shaped correction (no "fields" member) from a v2 one.
func isCorrectionV1(data json.RawMessage) bool {
	m, err := decodeObject(data)
	if err != nil {
		return false
	}
	_, nested := m["fields"]
	return !nested && len(bytes.TrimSpace(data)) > 0
}
