package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
	"github.com/labstack/echo/v4"
)

// List limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
	maxQuery     = 200
)

// createEngagement records a new engagement: POST /v1/engagements.
func (s *Server) createEngagement(c echo.Context) error {
	body, err := readJSON(c)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return badRequest("the body is not a JSON object")
	}
	cmd, err := s.command(c, m)
	if err != nil {
		return err
	}
	delete(m, "occurred_at")
	cmd.Type = domain.EngagementRecorded
	cmd.Data, _ = json.Marshal(m)
	r, err := s.execute(c, cmd)
	if err != nil {
		return topLevel(err)
	}
	e, err := s.proj.Get(c.Request().Context(), r.EngagementID, domain.Window{})
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/engagements/"+e.ID())
	c.Response().Header().Set("ETag", etag(e.Version()))
	return c.JSON(http.StatusCreated, s.view(e))
}

// eventResponse is the answer to an appended event.
type eventResponse struct {
	ID       string           `json:"id"`
	Type     domain.EventType `json:"type"`
	Sequence uint64           `json:"sequence"`
	Version  int              `json:"version"`
}

// appendEvent appends one event: POST /v1/engagements/{id}/events.
func (s *Server) appendEvent(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	ifMatch, err := parseIfMatch(c.Request().Header.Get("If-Match"))
	if err != nil {
		return err
	}
	body, err := readJSON(c)
	if err != nil {
		return err
	}
	m, err := fields(body, "type", "occurred_at", "data")
	if err != nil {
		return err
	}
	typ, ok, err := stringField(m, "type")
	if err != nil {
		return err
	}
	if !ok {
		return &domain.ValidationError{Fields: []domain.FieldError{{Field: "type", Message: "is required"}}}
	}
	t, err := domain.ParseEventType(typ)
	if err != nil {
		return err
	}
	if spec, _ := domain.SpecOf(t); spec.System {
		// Reminders are the service's own record (actor system): no
		// client may write one, whatever its role or X-Actor.
		return &domain.ValidationError{Fields: []domain.FieldError{{Field: "type",
			Message: fmt.Sprintf("%s is recorded by the service itself, not by a client", t)}}}
	}
	cmd, err := s.command(c, m)
	if err != nil {
		return err
	}
	cmd.EngagementID, cmd.Type, cmd.Data, cmd.IfMatch = id, t, m["data"], ifMatch
	r, err := s.execute(c, cmd)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(r.Version))
	c.Response().Header().Set(echo.HeaderLocation, "/v1/engagements/"+id)
	resp := eventResponse{ID: r.EventID, Type: r.Type, Sequence: r.Sequence, Version: r.Version}
	if prettyJSON(c) {
		return c.JSON(http.StatusCreated, resp)
	}
	b, err := resp.marshalJSON()
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusCreated, b)
}

// marshalJSON is r as c.JSON writes it (final newline included), written
// token by token by a pooled jsontext.Encoder: every append answers with
// one, and reflection would cost more than the rest of the answer.
func (r eventResponse) marshalJSON() ([]byte, error) {
	return writeJSON(
		jsontext.BeginObject,
		jsontext.String("id"), jsontext.String(r.ID),
		jsontext.String("type"), jsontext.String(string(r.Type)),
		jsontext.String("sequence"), jsontext.Uint(r.Sequence),
		jsontext.String("version"), jsontext.Int(int64(r.Version)),
		jsontext.EndObject,
	)
}

// execute runs the command path and times it.
func (s *Server) execute(c echo.Context, cmd app.Command) (app.Result, error) {
	start := time.Now()
	r, err := s.svc.Execute(c.Request().Context(), cmd)
	outcome := "appended"
	if err != nil {
		outcome = strconv.Itoa(toProblem(err).Status)
	}
	s.metrics.appends.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	return r, err
}

// command reads what every write shares: occurred_at from the body, and the
// actor, idempotency key and correlation headers.
func (s *Server) command(c echo.Context, m map[string]json.RawMessage) (app.Command, error) {
	var cmd app.Command
	h := c.Request().Header
	t, precision, err := occurredAt(m)
	if err != nil {
		return cmd, err
	}
	cmd.OccurredAt, cmd.TimePrecision = t, precision
	var bad []domain.FieldError
	header := func(name string, max int) string {
		v := h.Get(name)
		if v != "" && !token(v, max) {
			bad = append(bad, domain.FieldError{Field: name,
				Message: fmt.Sprintf("must be 1 to %d visible ASCII characters", max)})
		}
		return v
	}
	cmd.IdempotencyKey = header("Idempotency-Key", 200)
	cmd.CorrelationID = header("X-Correlation-ID", 200)
	cmd.CausationID = header("X-Causation-ID", 200)
	cmd.Actor = header("X-Actor", domain.MaxEntry)
	if len(bad) > 0 {
		return cmd, badRequest("a request header is not valid", bad...)
	}
	if name, ok := actor(c); ok {
		cmd.Actor = name // with tokens, the token's name is the actor
	} else if cmd.Actor == "" {
		cmd.Actor = "anonymous"
	}
	return cmd, nil
}

// occurredAt reads the optional member occurred_at of a write's body, with
// its precision (see parseOccurred); the zero time when it is absent.
func occurredAt(m map[string]json.RawMessage) (time.Time, string, error) {
	occurred, ok, err := stringField(m, "occurred_at")
	if err != nil || !ok {
		return time.Time{}, "", err
	}
	t, precision, err := parseOccurred(occurred)
	if err != nil {
		return time.Time{}, "", &domain.ValidationError{Fields: []domain.FieldError{{Field: "occurred_at", Message: err.Error()}}}
	}
	return t, precision, nil
}

// token reports whether v is 1..max visible ASCII characters.
func token(v string, max int) bool {
	if v == "" || len(v) > max {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// topLevel renames "data.x" fields to "x": the create body is the
// engagement.recorded data itself.
func topLevel(err error) error {
	var v *domain.ValidationError
	var m *domain.MalformedError
	var fields []domain.FieldError
	switch {
	case errors.As(err, &v):
		fields = v.Fields
	case errors.As(err, &m):
		fields = m.Fields
	}
	for i := range fields {
		fields[i].Field = strings.TrimPrefix(fields[i].Field, "data.")
	}
	return err
}

// getEngagement returns the current state: GET /v1/engagements/{id}.
func (s *Server) getEngagement(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	w, err := parseWindow(c)
	if err != nil {
		return err
	}
	if w.IsZero() {
		return s.currentEngagement(c, id)
	}
	e, err := s.proj.Get(c.Request().Context(), id, w)
	if err != nil {
		return err
	}
	v := e.View()
	v.Status = v.StatusAt(w.Day(s.now()))
	return c.JSON(http.StatusOK, &v)
}

// currentEngagement answers GET /v1/engagements/{id} for the current state.
// The engagement is encoded straight from the projection, under its read
// lock, instead of being copied first: the copy's maps grow with the
// engagement's history and made a read cost more than the encoding.
func (s *Server) currentEngagement(c echo.Context, id string) error {
	r := currentReads.Get().(*currentRead)
	defer func() {
		*r = currentRead{fn: r.fn} // keep nothing of this request in the pool
		currentReads.Put(r)
	}()
	r.inm, r.pretty, r.now = c.Request().Header["If-None-Match"], prettyJSON(c), s.now()
	if !s.proj.Read(id, r.fn) {
		return fmt.Errorf("engagement %s: %w", id, domain.ErrNotFound)
	}
	c.Response().Header().Set("ETag", etag(r.version))
	if r.notModified {
		return c.NoContent(http.StatusNotModified)
	}
	if r.err != nil {
		return r.err
	}
	return c.JSONBlob(http.StatusOK, r.body)
}

// currentRead is what currentEngagement hands the projection's Read. A
// callback through an interface escapes: a closure over the handler's
// variables would cost four allocations per GET; pooled, with its method
// value bound once, it costs none.
type currentRead struct {
	inm    []string // the If-None-Match field lines
	pretty bool
	now    time.Time

	version     int
	notModified bool
	body        []byte
	err         error
	fn          func(e *domain.Engagement, lastSeq uint64) // read
}

var currentReads = sync.Pool{New: func() any {
	r := new(currentRead)
	r.fn = r.read
	return r
}}

func (r *currentRead) read(e *domain.Engagement, _ uint64) {
	r.version = e.Version()
	if r.notModified = noneMatch(r.inm, r.version); r.notModified {
		return
	}
	v := e.View() // shares e's slices, and only reads them here
	v.Status = v.StatusAt(r.now)
	r.body, r.err = encodeJSON(&v, r.pretty)
}

// view is an engagement as the API shows it, with its status derived today.
func (s *Server) view(e *domain.Engagement) *domain.View {
	v := e.View()
	v.Status = v.StatusAt(s.now())
	return &v
}

type listResponse struct {
	Items      []domain.View `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

// listEngagements lists and filters: GET /v1/engagements.
func (s *Server) listEngagements(c echo.Context) error {
	q := c.QueryParams()
	w, err := parseWindow(c)
	if err != nil {
		return err
	}
	f := projections.Filter{Limit: DefaultLimit, Now: w.Day(s.now()), Party: q.Get("party"), Tag: q.Get("tag"),
		Q: q.Get("q"), Window: w}
	var bad []domain.FieldError
	f.Kind = queryKind(q.Get("kind"), &bad)
	if st := q.Get("status"); st != "" {
		if f.Status = domain.Status(st); !domain.ValidStatus(f.Status) {
			bad = append(bad, domain.FieldError{Field: "status", Message: "is not a status of any kind"})
		}
	}
	f.Limit = queryLimit(q.Get("limit"), f.Limit, &bad)
	if cur := q.Get("cursor"); cur != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cur)
		if err != nil || domain.CheckID(string(raw)) != nil {
			bad = append(bad, domain.FieldError{Field: "cursor", Message: "is not a cursor this API returned"})
		}
		f.After = string(raw)
	}
	for _, p := range []struct{ name, v string }{{"party", f.Party}, {"tag", f.Tag}, {"q", f.Q}} {
		if len(p.v) > maxQuery {
			bad = append(bad, domain.FieldError{Field: p.name, Message: fmt.Sprintf("must be at most %d bytes", maxQuery)})
		}
	}
	if len(bad) > 0 {
		return badRequest("a query parameter is not valid", bad...)
	}
	items, more, err := s.proj.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	resp := listResponse{Items: make([]domain.View, 0, len(items))}
	for _, e := range items {
		v := e.View()
		v.Status = v.StatusAt(f.Now)
		resp.Items = append(resp.Items, v)
	}
	if more && len(items) > 0 {
		next := base64.RawURLEncoding.EncodeToString([]byte(items[len(items)-1].ID()))
		resp.NextCursor = &next
	}
	return c.JSON(http.StatusOK, resp)
}

type historyResponse struct {
	Events []domain.Event `json:"events"`
}

// history lists an engagement's events, oldest first: all of them, or with
// after, before or limit one page (see parseHistoryPage).
func (s *Server) history(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	w, err := parseWindow(c)
	if err != nil {
		return err
	}
	q, paged, err := parseHistoryPage(c)
	if err != nil {
		return err
	}
	if paged {
		q.Window = w
		page, err := s.proj.HistoryPage(c.Request().Context(), id, q)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, historyResponse{Events: page.Events})
	}
	events, err := s.proj.History(c.Request().Context(), id, w)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, historyResponse{Events: events})
}

// parseHistoryPage reads the paging of history, by version: after (from 0)
// and before (from 1) bound the versions, limit (1 to MaxLimit) the count,
// the oldest of the range, or with before alone the newest. Without any of
// them the whole history is answered, as it always was (paged reports it).
func parseHistoryPage(c echo.Context) (q projections.HistoryQuery, paged bool, err error) {
	var bad []domain.FieldError
	for _, p := range []struct {
		name string
		min  int
		max  int
		to   *int
	}{{"after", 0, math.MaxInt32, &q.After}, {"before", 1, math.MaxInt32, &q.Before}, {"limit", 1, MaxLimit, &q.Limit}} {
		v := c.QueryParam(p.name)
		if v == "" {
			continue
		}
		paged = true
		n, err := strconv.Atoi(v)
		if err != nil || n < p.min || n > p.max {
			bad = append(bad, domain.FieldError{Field: p.name, Message: fmt.Sprintf("must be a whole number from %d to %d", p.min, p.max)})
			continue
		}
		*p.to = n
	}
	if len(bad) > 0 {
		return q, false, badRequest("a query parameter is not valid", bad...)
	}
	q.Newest = q.Before > 0 && q.After == 0
	return q, paged, nil
}

func pathID(c echo.Context) (string, error) {
	id := c.Param("id")
	if err := domain.CheckID(id); err != nil {
		return "", err
	}
	return id, nil
}

func etag(version int) string { return `"` + strconv.Itoa(version) + `"` }

// noneMatch reports whether If-None-Match, given as its field lines, matches
// the engagement at version (RFC 9110 13.1.2): "*" matches any existing
// engagement, otherwise any entity-tag of the comma-separated lists does
// whose opaque tag is this version's, weak (W/"3") or strong ("3"), since
// If-None-Match compares weakly. A malformed list matches from nothing
// after the point where it stops being one. It allocates nothing: every
// GET without a match runs it.
func noneMatch(lines []string, version int) bool {
	var buf [20]byte
	want := strconv.AppendInt(buf[:0], int64(version), 10)
	for _, v := range lines {
		for v != "" {
			switch v[0] {
			case ' ', '\t', ',':
				v = v[1:]
				continue
			case '*':
				return true
			}
			v = strings.TrimPrefix(v, "W/")
			if v == "" || v[0] != '"' {
				break // not an entity-tag: the rest of this line is not read
			}
			end := strings.IndexByte(v[1:], '"')
			if end < 0 {
				break
			}
			if v[1:1+end] == string(want) {
				return true
			}
			v = v[end+2:]
		}
	}
	return false
}

// parseIfMatch reads If-Match: "<version>". Empty or * means no check.
func parseIfMatch(v string) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "*" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(v, "W/"), `"`))
	if err != nil || n < 1 || !strings.HasSuffix(v, `"`) {
		return 0, badRequest(`If-Match must be an ETag this API returned, such as "3"`,
			domain.FieldError{Field: "If-Match", Message: `must look like "3"`})
	}
	return n, nil
}

// queryKind reads a list's kind parameter ("": any); a kind that is not
// one is added to bad.
func queryKind(v string, bad *[]domain.FieldError) domain.Kind {
	k := domain.Kind(v)
	if v != "" && !k.Valid() {
		*bad = append(*bad, domain.FieldError{Field: "kind", Message: "must be agreement, policy, initiative or meeting"})
	}
	return k
}

// queryLimit reads a list's limit parameter, def when it is absent; a
// limit outside 1..MaxLimit is added to bad.
func queryLimit(v string, def int, bad *[]domain.FieldError) int {
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		*bad = append(*bad, domain.FieldError{Field: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", MaxLimit)})
	}
	return n
}
