package api

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/labstack/echo/v4"
)

// Walker reads the stream itself, in order and in constant memory, to the
// end of what is stored (export) or on live (with domain.Filter.Live: the
// event stream); eventstore.Store is one.
type Walker interface {
	Read(ctx context.Context, after uint64, f domain.Filter) iter.Seq2[domain.Message, error]
}

// ExportOptions select and shape an export.
type ExportOptions struct {
	// Format is "ndjson" or "csv".
	Format string
	// After and To bound stream sequences (To 0: no bound).
	After, To uint64
	// From and Until bound occurred_at (zero: no bound).
	From, Until time.Time
	Kind        domain.Kind
	Types       []domain.EventType
}

// CSVHeader is the export's CSV columns.
var CSVHeader = []string{"sequence", "event_id", "engagement_id", "kind", "type", "occurred_at", "recorded_at",
	"actor", "hash", "data"}

// Export writes the selected events to w as NDJSON (one event per line, as
// in history) or CSV, straight from the stream: nothing is buffered beyond
// one event. Messages that do not decode or fail their hash check are left
// out (verify reports them). progress, when not nil, gets each sequence.
func Export(ctx context.Context, w io.Writer, st Walker, o ExportOptions, progress func(seq uint64)) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var cw *csv.Writer
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if o.Format == "csv" {
		cw = csv.NewWriter(bw)
		if err := cw.Write(CSVHeader); err != nil {
			return 0, err
		}
	}
	n := 0
	var err error
	for m, rerr := range st.Read(ctx, o.After, domain.Filter{Selection: domain.Selection{Kind: o.Kind, Types: o.Types}}) {
		if rerr != nil {
			err = rerr
			break
		}
		seq, ev := m.Sequence, m.Event
		if progress != nil {
			progress(seq)
		}
		if o.To > 0 && seq > o.To {
			break
		}
		if m.Err != nil || !o.From.IsZero() && ev.OccurredAt.Before(o.From) || !o.Until.IsZero() && ev.OccurredAt.After(o.Until) {
			continue
		}
		n++
		if cw != nil {
			err = cw.Write([]string{strconv.FormatUint(seq, 10), ev.ID, ev.EngagementID, string(ev.Kind), string(ev.Type),
				ev.OccurredAt.Format(time.RFC3339Nano), ev.RecordedAt.Format(time.RFC3339Nano), ev.Actor, ev.Hash,
				string(ev.Data)})
		} else {
			err = enc.Encode(ev)
		}
		if err != nil {
			break
		}
	}
	if cw != nil {
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return n, err
}

// ParseExportOptions reads format, from, to, kind and type. from and to are
// stream sequences (whole numbers) or times on occurred_at (RFC 3339 or a
// date; a date as "to" includes that day).
func ParseExportOptions(get func(string) string) (ExportOptions, error) {
	o := ExportOptions{Format: get("format"), Kind: domain.Kind(get("kind"))}
	var bad []domain.FieldError
	if o.Format == "" {
		o.Format = "ndjson"
	}
	if o.Format != "ndjson" && o.Format != "csv" {
		bad = append(bad, domain.FieldError{Field: "format", Message: "must be ndjson or csv"})
	}
	if from := get("from"); from != "" {
		if n, err := strconv.ParseUint(from, 10, 64); err == nil {
			o.After = max(n, 1) - 1
		} else if t, err := parseTime(from); err == nil {
			o.From = t
		} else {
			bad = append(bad, domain.FieldError{Field: "from", Message: "must be a stream sequence, an RFC 3339 time or a date"})
		}
	}
	if to := get("to"); to != "" {
		if n, err := strconv.ParseUint(to, 10, 64); err == nil && n > 0 {
			o.To = n
		} else if t, err := parseBound(to); err == nil {
			o.Until = t
		} else {
			bad = append(bad, domain.FieldError{Field: "to", Message: "must be a stream sequence, an RFC 3339 time or a date"})
		}
	}
	if o.Kind != "" && !o.Kind.Valid() {
		bad = append(bad, domain.FieldError{Field: "kind", Message: "must be agreement, policy, initiative or meeting"})
	}
	if t := get("type"); t != "" {
		if o.Types = typesFor(t); o.Types == nil {
			bad = append(bad, domain.FieldError{Field: "type", Message: "must be an event type or <prefix>.* (e.g. agreement.*)"})
		}
	}
	if len(bad) > 0 {
		return o, badRequest("an export parameter is not valid", bad...)
	}
	return o, nil
}

// typesFor expands an event type or "<prefix>.*"; nil if it names none.
func typesFor(filter string) []domain.EventType {
	prefix, wildcard := strings.CutSuffix(filter, ".*")
	var out []domain.EventType
	for _, t := range domain.EventTypes {
		if wildcard && t.Prefix() == prefix || !wildcard && string(t) == filter {
			out = append(out, t)
		}
	}
	return out
}

// export streams the log: GET /v1/events/export.
func (s *Server) export(c echo.Context) error {
	o, err := ParseExportOptions(c.QueryParam)
	if err != nil {
		return err
	}
	ext, ctype := "ndjson", "application/x-ndjson"
	if o.Format == "csv" {
		ext, ctype = "csv", "text/csv; charset=utf-8"
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, ctype)
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="engagement-events.%s"`, ext))
	// The status goes out with the first byte: an export that fails before
	// (NATS away) still gets its problem response.
	if _, err := Export(c.Request().Context(), c.Response(), s.stream, o, nil); err != nil {
		if !c.Response().Committed {
			h.Del(echo.HeaderContentDisposition)
			return err
		}
		// The status is sent; cutting the connection short tells the client.
		s.log.Error("export failed mid-stream", "err", err)
		panic(http.ErrAbortHandler)
	}
	if !c.Response().Committed {
		c.Response().WriteHeader(http.StatusOK) // nothing to export
	}
	return nil
}

// verify walks and checks the stream: GET /v1/verify[?until=<seq>].
func (s *Server) verify(c echo.Context) error {
	var until uint64
	if u := c.QueryParam("until"); u != "" {
		n, err := strconv.ParseUint(u, 10, 64)
		if err != nil || n == 0 {
			return badRequest("until must be a stream sequence", domain.FieldError{Field: "until", Message: "must be a whole number from 1"})
		}
		until = n
	}
	verify := s.stream.VerifyUntil
	if s.proofs != nil {
		verify = s.proofs.Verify
	}
	rep, err := verify(c.Request().Context(), until, nil)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}
