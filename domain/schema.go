package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Event data has a schema version per type, stored with every event as its
// CloudEvents dataschema (/schemas/<type>/v<N>). When a type's shape changes,
// its version goes up and an upcaster turns the older shape into the newer
// one; Upcast is the one place readers do that.
//
// History of the shapes:
//   - engagement.corrected v1 carried the corrected fields beside corrects and
//     reason, so the reason of agreement.terminated or initiative.left could
//     not be corrected (it clashed with the correction's own reason). v2 nests
//     them: {"corrects", "reason", "fields": {...}}.
var schemaVersions = map[EventType]int{
	EngagementCorrected: 2,
}

// upcasters[t][v] turns version v of t's data into version v+1.
var upcasters = map[EventType]map[int]func(map[string]json.RawMessage) (map[string]json.RawMessage, error){
	EngagementCorrected: {1: correctedV1ToV2},
}

// SchemaVersion is the current data schema version of t.
func SchemaVersion(t EventType) int {
	if v, ok := schemaVersions[t]; ok {
		return v
	}
	return 1
}

// DataSchema is the dataschema attribute of t's current version.
func DataSchema(t EventType) string {
	return "/schemas/" + string(t) + "/v" + strconv.Itoa(SchemaVersion(t))
}

// ParseDataSchema reads /schemas/<type>/v<N>.
func ParseDataSchema(s string) (EventType, int, error) {
	rest, ok := strings.CutPrefix(s, "/schemas/")
	typ, ver, ok2 := strings.Cut(rest, "/v")
	if !ok || !ok2 {
		return "", 0, fmt.Errorf("dataschema %q is not /schemas/<type>/v<N>", truncate(s, 80))
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

// isCorrectionV1 tells a v1-shaped correction (no "fields" member) from a v2 one.
func isCorrectionV1(data json.RawMessage) bool {
	m, err := decodeObject(data)
	if err != nil {
		return false
	}
	_, nested := m["fields"]
	return !nested && len(bytes.TrimSpace(data)) > 0
}
