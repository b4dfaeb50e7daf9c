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
	"strconv"
	"unicode/utf8"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/labstack/echo/v4"
)

// batchesPath is the route of POST /v1/batches.
const batchesPath = "/v1/batches"

// MaxBatchBody is the largest body of a batch (413 above). Each command in
// it is held to MaxBody, as a single request is.
const MaxBatchBody = 16 << 20

// Media types of a batch's body.
const (
	mediaNDJSON = "application/x-ndjson"
	mediaJSON   = "application/json"
)

// batchResult is the outcome of one command of a batch.
type batchResult struct {
	Index        int            `json:"index"`
	Status       int            `json:"status"`
	EngagementID string         `json:"engagement_id,omitempty"`
	Event        *eventResponse `json:"event,omitempty"`
	Replayed     bool           `json:"replayed,omitempty"`
	Problem      *Problem       `json:"problem,omitempty"`
}

// batchResponse is the answer to a batch: one result per command, in order,
// and how many were appended, replayed and refused.
type batchResponse struct {
	Results  []batchResult `json:"results"`
	Appended int           `json:"appended"`
	Replayed int           `json:"replayed"`
	Refused  int           `json:"refused"`
}

// batch runs up to app.MaxBatch commands: POST /v1/batches. A body that is
// not a batch of well-formed commands is refused whole (400, 413, 415) and
// nothing is tried; otherwise the answer is 200 with each command's own
// status (see app.Service.ExecuteBatch for the order and the atomicity).
func (s *Server) batch(c echo.Context) error {
	h := c.Request().Header
	if h.Get("Idempotency-Key") != "" {
		return badRequest("a batch takes an idempotency_key in each command, not the Idempotency-Key header",
			domain.FieldError{Field: "Idempotency-Key", Message: "is not allowed on a batch"})
	}
	ct := h.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != mediaNDJSON && mt != mediaJSON) {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType,
			fmt.Sprintf("Content-Type %q is not supported; send %s (one command a line) or %s (an array of commands)",
				truncate(ct, 100), mediaNDJSON, mediaJSON))
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return bodyTooLarge(MaxBatchBody)
		}
		return badRequest("the request body could not be read")
	}
	if !utf8.Valid(body) {
		return badRequest("the request body is not valid UTF-8")
	}
	var raws []rawCommand
	if mt == mediaNDJSON {
		raws, err = splitNDJSON(body)
	} else {
		raws, err = splitArray(body)
	}
	if err != nil {
		return err
	}
	if len(raws) == 0 {
		return badRequest("the batch holds no commands")
	}
	base, err := s.command(c, nil)
	if err != nil {
		return err
	}
	cmds := make([]app.BatchCommand, len(raws))
	creates := make([]bool, len(raws))
	var bad []domain.FieldError
	for i, raw := range raws {
		cmd, create, err := parseCommand(base, raw.body)
		if err != nil {
			if p := toProblem(err); p.Status == http.StatusBadRequest {
				bad = append(bad, labelled(raw.label, p)...)
				continue
			}
		}
		cmds[i] = app.BatchCommand{Command: cmd, Err: err}
		creates[i] = create
	}
	if len(bad) > 0 {
		return badRequest("the batch has malformed commands; none was tried", bad...)
	}
	outs := s.svc.ExecuteBatch(c.Request().Context(), cmds)
	resp := batchResponse{Results: make([]batchResult, len(outs))}
	for i, o := range outs {
		res := batchResult{Index: i}
		switch {
		case o.Err != nil:
			err := o.Err
			if creates[i] {
				err = topLevel(err)
			}
			res.Problem = batchProblem(err)
			res.Status = res.Problem.Status
			resp.Refused++
		default:
			res.Status = http.StatusCreated
			res.EngagementID = o.Result.EngagementID
			res.Event = &eventResponse{ID: o.Result.EventID, Type: o.Result.Type, Sequence: o.Result.Sequence,
				Version: o.Result.Version}
			res.Replayed = o.Replayed
			if o.Replayed {
				resp.Replayed++
			} else {
				resp.Appended++
			}
		}
		resp.Results[i] = res
		outcome := "appended"
		if o.Err != nil {
			outcome = strconv.Itoa(res.Status)
		}
		s.metrics.batchCommands.WithLabelValues(outcome).Inc()
	}
	return c.JSON(http.StatusOK, resp)
}

// batchProblem is a refused command's problem; a command not tried for an
// earlier one's refusal is 424.
func batchProblem(err error) *Problem {
	var dep *app.DependencyError
	if errors.As(err, &dep) {
		return problem(http.StatusFailedDependency, "failed-dependency", "Failed dependency",
			fmt.Sprintf("command %d, for the same engagement, was refused; this one was not tried", dep.Index))
	}
	return toProblem(err)
}

// labelled is a malformed command's problem as field errors of the batch,
// each named by the command's label.
func labelled(label string, p *Problem) []domain.FieldError {
	if len(p.Errors) == 0 {
		return []domain.FieldError{{Field: label, Message: p.Detail}}
	}
	out := make([]domain.FieldError, len(p.Errors))
	for i, f := range p.Errors {
		out[i] = domain.FieldError{Field: label + ": " + f.Field, Message: f.Message}
	}
	return out
}

// rawCommand is one command's JSON text and where it was in the body:
// "line 3" of NDJSON, "[2]" of an array.
type rawCommand struct {
	label string
	body  []byte
}

// splitNDJSON splits an NDJSON body into its commands, one a line (blank
// lines skipped). Every line that is not one JSON object is reported by its
// number.
func splitNDJSON(body []byte) ([]rawCommand, error) {
	var out []rawCommand
	var bad []domain.FieldError
	for n, rest := 0, body; len(rest) > 0; {
		n++
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		label := "line " + strconv.Itoa(n)
		if err := checkCommand(line); err != nil {
			bad = append(bad, domain.FieldError{Field: label, Message: err.Error()})
		} else {
			out = append(out, rawCommand{label: label, body: line})
		}
		if len(out)+len(bad) > app.MaxBatch {
			return nil, tooManyCommands()
		}
	}
	if len(bad) > 0 {
		return nil, badRequest("lines of the batch are not JSON objects; none was tried", bad...)
	}
	return out, nil
}

// splitArray splits a JSON array body into its commands; an element that
// is not one JSON object is reported by its index.
func splitArray(body []byte) ([]rawCommand, error) {
	r := newReader(body, readOptions)
	defer r.release()
	dec := &r.dec
	if tok, err := dec.ReadToken(); err != nil {
		return nil, badRequest(syntaxError(err).Error())
	} else if tok.Kind() != '[' {
		return nil, badRequest("a batch sent as " + mediaJSON + " must be a JSON array of commands")
	}
	var out []rawCommand
	var bad []domain.FieldError
	for i := 0; dec.PeekKind() != ']'; i++ {
		label := "[" + strconv.Itoa(i) + "]"
		v, err := dec.ReadValue()
		if err != nil {
			// The array cannot be read past a syntax error.
			bad = append(bad, domain.FieldError{Field: label, Message: syntaxError(err).Error()})
			return nil, badRequest("the batch is not valid JSON; none was tried", bad...)
		}
		if len(out)+len(bad) == app.MaxBatch {
			return nil, tooManyCommands()
		}
		if err := checkCommand(v); err != nil {
			bad = append(bad, domain.FieldError{Field: label, Message: err.Error()})
			continue
		}
		out = append(out, rawCommand{label: label, body: slices.Clone([]byte(v))})
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, badRequest(syntaxError(err).Error())
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, badRequest("unexpected data after the JSON array")
	}
	if len(bad) > 0 {
		return nil, badRequest("elements of the batch are not JSON objects; none was tried", bad...)
	}
	return out, nil
}

// checkCommand checks one command's text as readJSON checks a single
// request's body: at most MaxBody, one JSON object, no duplicate keys.
func checkCommand(b []byte) error {
	if len(b) > MaxBody {
		return fmt.Errorf("a command may take at most %d bytes", MaxBody)
	}
	return checkJSON(b)
}

func tooManyCommands() *Problem {
	return problem(http.StatusRequestEntityTooLarge, "body-too-large", "Body too large",
		fmt.Sprintf("a batch holds at most %d commands; send the rest in another", app.MaxBatch))
}

// Batch operations.
const (
	opCreate = "create"
	opAppend = "append"
)

// parseCommand reads one command of a batch (checked by checkCommand) on
// top of base, what the request's headers give every command. create
// reports a command that records an engagement. Errors are what the single
// request would answer: 400 for the shape, 422 for the rules.
func parseCommand(base app.Command, body []byte) (cmd app.Command, create bool, err error) {
	cmd = base
	m, err := members(body)
	if err != nil {
		return cmd, false, badRequest("the command is not a JSON object")
	}
	op, ok, err := stringField(m, "op")
	if err != nil {
		return cmd, false, err
	}
	if !ok || (op != opCreate && op != opAppend) {
		return cmd, false, badRequest("op must be create or append",
			domain.FieldError{Field: "op", Message: "must be create or append"})
	}
	create = op == opCreate
	key, ok, err := stringField(m, "idempotency_key")
	if err != nil {
		return cmd, create, err
	}
	if ok && !token(key, 200) {
		return cmd, create, badRequest("idempotency_key is not valid",
			domain.FieldError{Field: "idempotency_key", Message: "must be 1 to 200 visible ASCII characters"})
	}
	cmd.IdempotencyKey = key
	delete(m, "op")
	delete(m, "idempotency_key")
	if create {
		for _, f := range []string{"engagement_id", "if_match"} {
			if _, ok := m[f]; ok {
				return cmd, create, badRequest("a create names no engagement and no version",
					domain.FieldError{Field: f, Message: "is only for op append"})
			}
		}
		if cmd.OccurredAt, cmd.TimePrecision, err = occurredAt(m); err != nil {
			return cmd, create, err
		}
		delete(m, "occurred_at")
		cmd.Type = domain.EngagementRecorded
		cmd.Data, err = json.Marshal(m)
		return cmd, create, err
	}
	for k := range m {
		if !slices.Contains([]string{"engagement_id", "if_match", "type", "occurred_at", "data"}, k) {
			return cmd, create, badRequest("the command has fields the API does not know",
				domain.FieldError{Field: truncate(k, 64), Message: "unknown field"})
		}
	}
	id, ok, err := stringField(m, "engagement_id")
	if err != nil {
		return cmd, create, err
	}
	if !ok {
		return cmd, create, badRequest("an append names its engagement",
			domain.FieldError{Field: "engagement_id", Message: "is required"})
	}
	if err := domain.CheckID(id); err != nil {
		return cmd, create, badRequest(err.Error(), domain.FieldError{Field: "engagement_id", Message: "must be a UUID"})
	}
	cmd.EngagementID = id
	if raw, ok := m["if_match"]; ok && string(raw) != "null" {
		n, err := strconv.Atoi(string(raw))
		if err != nil || n < 1 {
			return cmd, create, badRequest("if_match is not valid",
				domain.FieldError{Field: "if_match", Message: "must be a version, a whole number from 1"})
		}
		cmd.IfMatch = n
	}
	typ, ok, err := stringField(m, "type")
	if err != nil {
		return cmd, create, err
	}
	if !ok {
		return cmd, create, &domain.ValidationError{Fields: []domain.FieldError{{Field: "type", Message: "is required"}}}
	}
	if cmd.Type, err = domain.ParseEventType(typ); err != nil {
		return cmd, create, err
	}
	if cmd.OccurredAt, cmd.TimePrecision, err = occurredAt(m); err != nil {
		return cmd, create, err
	}
	cmd.Data = m["data"]
	return cmd, create, nil
}
