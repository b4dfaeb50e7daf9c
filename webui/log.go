package webui

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// logPageSize is how many events a page of the global log shows.
const logPageSize = 50

// logData is the global log page: the auditor's view of every event in
// stream order, as GET /v1/events serves it.
type logData struct {
	base
	Events     []domain.Event
	Kind, Type string
	// Since is the "recorded from" date (YYYY-MM-DD); Dated, whether the
	// filter is offered.
	Since        string
	Dated        bool
	After        uint64
	Next, First  string
	Kinds, Types []option
	Errors       map[string]string
}

// logQuery is the log's address with its filters and after.
func logQuery(kind, typ, since string, after uint64) string {
	v := url.Values{}
	if since != "" {
		v.Set("since", since)
	}
	if kind != "" {
		v.Set("kind", kind)
	}
	if typ != "" {
		v.Set("type", typ)
	}
	if after > 0 {
		v.Set("after", strconv.FormatUint(after, 10))
	}
	if len(v) == 0 {
		return "/log"
	}
	return "/log?" + v.Encode()
}

// eventLog is GET /log?kind=&type=&since=&after=: a page of the global log read
// from the stream (the projection leaves out what it refused). A filter
// that is not valid is dropped and its problem shown beside it.
func (u *UI) eventLog(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := logData{base: u.base(s, "Event log", "log"), Errors: map[string]string{}}
	f := projections.LogFilter{Limit: logPageSize}
	if k := q.Get("kind"); k != "" {
		if domain.Kind(k).Valid() {
			f.Kind, d.Kind = domain.Kind(k), k
		} else {
			d.Errors["kind"] = "must be agreement, policy, initiative or meeting"
		}
	}
	if t := q.Get("type"); t != "" {
		if typ, err := domain.ParseEventType(t); err == nil {
			f.Types, d.Type = []domain.EventType{typ}, t
		} else {
			d.Errors["type"] = "is not an event type"
		}
	}
	if a := q.Get("after"); a != "" {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			d.Errors["after"] = "must be a stream sequence (a whole number)"
		}
		f.After = n
	}
	if day := q.Get("since"); day != "" && q.Get("after") == "" {
		after, problem, ok := u.sinceSequence(r.Context(), day)
		switch {
		case !ok:
		case problem != "":
			d.Errors["since"] = problem
		default:
			f.After, d.Since = after, day
		}
	} else if day != "" {
		d.Since = day // kept in the links; after already starts later
	}
	d.Dated = u.auditing != nil
	d.After = f.After
	events, err := u.proj.Log(r.Context(), f)
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	d.Events = events
	if len(events) == logPageSize {
		d.Next = logQuery(d.Kind, d.Type, d.Since, events[len(events)-1].Sequence)
	}
	if q.Get("after") != "" {
		d.First = logQuery(d.Kind, d.Type, d.Since, 0)
	}
	d.Kinds = []option{{Value: "", Label: "All kinds", Selected: d.Kind == ""}}
	for _, k := range []domain.Kind{domain.KindAgreement, domain.KindPolicy, domain.KindInitiative, domain.KindMeeting} {
		d.Kinds = append(d.Kinds, option{Value: string(k), Label: string(k), Selected: d.Kind == string(k)})
	}
	d.Types = []option{{Value: "", Label: "All types", Selected: d.Type == ""}}
	for _, t := range domain.EventTypes {
		d.Types = append(d.Types, option{Value: string(t), Label: string(t), Selected: d.Type == string(t)})
	}
	status := http.StatusOK
	if len(d.Errors) > 0 {
		status = http.StatusBadRequest
	}
	u.render(w, status, "log", d)
}
