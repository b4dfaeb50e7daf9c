package webui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// fact is one labelled value on a page; Href makes it a link, Day a date,
// Wide a long text that takes the whole row.
type fact struct {
	Label, Value, Href string
	Day, Wide          bool
}

// related is another engagement linked to or from this one.
type related struct {
	Relation string
	ID       string
	Title    string
	Kind     domain.Kind
	Status   domain.Status
}

// correction is a correction shown beside the entry it corrects. Href
// links to the correction's own entry; Elsewhere says it is not on this page.
type correction struct {
	ID        string
	Actor     string
	Recorded  time.Time
	Reason    string
	Facts     []fact
	Href      string
	Elsewhere bool
}

// entry is one event of the timeline.
type entry struct {
	ID       string
	Type     domain.EventType
	Title    string
	Occurred time.Time
	// Precision is the event's time precision: "1999", "January 2019".
	Precision string
	Recorded  time.Time
	Actor     string
	Version   int
	Facts     []fact
	// Corrects and CorrectsTitle point a correction at what it corrects.
	Corrects      string
	CorrectsTitle string
	Reason        string
	CorrectedBy   []correction
	// CorrectsHref links to the corrected entry: on this page, or (Elsewhere)
	// on the page of that entry alone.
	CorrectsHref string
	Elsewhere    bool
	// Href is this entry alone, in full; Cut says a long text was shortened
	// here (and the correction form is on that page, not this one).
	Href string
	Cut  bool
	// Correct is the form to correct this entry (writers only).
	Correct *formView
}

// option is one choice of a select.
type option struct {
	Value, Label string
	Selected     bool
}

// fieldView is one input of a form as rendered.
type fieldView struct {
	ID, Name, Label, Hint, Value, Error string
	Input                               string // text, textarea, date, select
	Options                             []option
	Required                            bool
	// Kinds lists the kinds a field applies to when not all (new engagements).
	Kinds string
}

// formView is one form as rendered.
type formView struct {
	ID       string
	Title    string
	Type     domain.EventType
	Action   string
	Version  int
	Key      string // idempotency key: a double submit records once
	Corrects string
	Fields   []fieldView
	Occurred fieldView
	Errors   []string
	Open     bool
}

// conflict explains a stale form: what others recorded since the version
// the user saw.
type conflict struct {
	Since   []entry
	More    bool // more changed than Since lists
	Allowed bool // the user's event is still possible in the new state
}

type engagementData struct {
	base
	E      *domain.Engagement
	Status domain.Status
	AsOf   string
	// KnownAt is "as known on": only what was recorded by the end of that day.
	KnownAt       string
	Facts         []fact
	Contributions []domain.Contribution
	Commitments   []domain.Commitment
	// Term is an agreement's signed → expires line with its notice
	// deadline; Actions its action items; FocalPoints per party.
	// Drawn is the real-scale timeline of the engagement's events.
	Drawn       *engagementTimeline
	Term        *termView
	Actions     []actionView
	FocalPoints []domain.FocalPoint
	Outgoing    []related
	Incoming    []related
	Timeline    []entry
	// History says which part of the history Timeline is.
	History historyNav
	Forms   []formView
	// Documents are the attached documents; Upload is the form that
	// attaches one (writers only).
	Documents []documentView
	Upload    *uploadView
	Conflict  *conflict
	CanWrite  bool
	// Seen is the stream sequence the page was built at: live updates
	// start after it.
	Seen uint64
	// Refused holds the domain's messages about a submitted event that no
	// form on the page shows.
	Refused []string
}

// termView is an agreement's term as the page shows it.
type termView struct {
	SignedOn, RenewedOn, ExpiresOn, NoticeBy string
	NoticeDays, DaysLeft                     int
}

// actionView is one action item, with whether it is overdue on the page's day.
type actionView struct {
	domain.Action
	Overdue bool
}

// desk gathers what a coordinator watches on v: the term, the action items
// (open first, by due day), the focal points, as on day.
func desk(v domain.View, day time.Time) (*termView, []actionView, []domain.FocalPoint) {
	var term *termView
	if v.Kind == domain.KindAgreement && v.SignedOn != "" {
		term = &termView{SignedOn: v.SignedOn, RenewedOn: v.RenewedOn, ExpiresOn: v.ExpiresOn, NoticeDays: v.NoticeDays}
		for _, dl := range v.Deadlines() {
			switch dl.Kind {
			case domain.DeadlineNotice:
				term.NoticeBy = dl.On
			case domain.DeadlineExpiry:
				term.DaysLeft = dl.DaysLeft(day)
			}
		}
	}
	actions := make([]actionView, 0, len(v.Actions))
	for _, a := range v.Actions {
		actions = append(actions, actionView{Action: a, Overdue: a.Overdue(day)})
	}
	slices.SortStableFunc(actions, func(a, b actionView) int {
		if (a.Status == domain.ActionOpen) != (b.Status == domain.ActionOpen) {
			if a.Status == domain.ActionOpen {
				return -1
			}
			return 1
		}
		return strings.Compare(a.DueOn, b.DueOn)
	})
	return term, actions, v.FocalPoints
}

// showsForm reports whether a form the user submitted is shown (open).
func (d engagementData) showsForm() bool {
	for _, f := range d.Forms {
		if f.Open {
			return true
		}
	}
	for _, en := range d.Timeline {
		if en.Correct != nil && en.Correct.Open {
			return true
		}
	}
	return false
}

// submitted is a form the user sent back, to show again with the domain's
// messages or after a conflict.
type submitted struct {
	typ      domain.EventType
	corrects string
	values   map[string]string
	errs     formError
}

// engagement: GET /engagements/{id}, optionally ?as_of=YYYY-MM-DD.
func (u *UI) engagement(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if err := domain.CheckID(id); err != nil {
		u.failed(w, r, s, err)
		return
	}
	var win domain.Window
	asOf, knownAt := strings.TrimSpace(r.URL.Query().Get("as_of")), strings.TrimSpace(r.URL.Query().Get("known_at"))
	for _, d := range []struct {
		day, label string
		dst        *time.Time
	}{{asOf, "as of", &win.AsOf}, {knownAt, "as known on", &win.KnownAt}} {
		if d.day == "" {
			continue
		}
		t, err := domain.ParseDate(d.day)
		if err != nil {
			u.errorPage(w, r, s, http.StatusBadRequest, "That date is not valid", d.label+": "+err.Error()+".")
			return
		}
		*d.dst = endOfDay(t)
	}
	sel, err := parseHistorySel(r.URL.Query())
	if err != nil {
		u.errorPage(w, r, s, http.StatusBadRequest, "That page of history does not exist", err.Error())
		return
	}
	sel.asOf, sel.knownAt = asOf, knownAt
	d, err := u.engagementData(r.Context(), s, id, win, sel, nil)
	if err != nil {
		if !win.IsZero() && errors.Is(err, domain.ErrNotFound) {
			msg := "This engagement had not begun by " + dayText(asOf) + "."
			if asOf == "" {
				msg = "Nothing of this engagement had been recorded by the end of " + dayText(knownAt) + "."
			}
			u.errorPage(w, r, s, http.StatusNotFound, "Not recorded yet on that date", msg)
			return
		}
		u.failed(w, r, s, err)
		return
	}
	d.AsOf, d.KnownAt = asOf, knownAt
	u.render(w, http.StatusOK, "engagement", d)
}

func endOfDay(t time.Time) time.Time { return t.Add(24*time.Hour - time.Nanosecond) }

// engagementData builds the page of engagement id within win (zero: now).
// readTimeout bounds reading an engagement's history from the stream.
const readTimeout = 5 * time.Second

// sel is the part of the history shown; sub, when set, is a form the user
// sent that is shown again.
func (u *UI) engagementData(ctx context.Context, s *session, id string, win domain.Window, sel historySel,
	sub *submitted) (engagementData, error) {
	seen := u.proj.Applied() // first: live updates start after what the page shows
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	e, err := u.proj.Get(ctx, id, win)
	if err != nil {
		return engagementData{}, err
	}
	page, err := u.proj.HistoryPage(ctx, id, sel.query(win)) // read from the stream
	if err != nil {
		return engagementData{}, err
	}
	// What the page's entries name that is on other pages: corrections of
	// its entries, and the entries its corrections correct.
	history, err := u.withRelated(ctx, id, win, page.Events)
	if err != nil {
		return engagementData{}, err
	}
	now := u.now()
	day := win.Day(now)
	d := engagementData{base: u.base(s, e.Title(), "portfolio"), E: e, Status: e.StatusAt(day),
		Contributions: e.Contributions(), Commitments: e.Commitments(),
		CanWrite: s.user.CanWrite() && win.IsZero(), Seen: seen}
	d.Facts = stateFacts(e)
	d.Term, d.Actions, d.FocalPoints = desk(e.View(), day)
	d.Drawn = timelineOf(e.View(), u.proj.Marks(id, win), day)
	d.Outgoing, d.Incoming = u.related(e, day)
	titles := u.titles()
	d.Timeline, d.History = u.timeline(id, page, history, sel, titles, d.CanWrite)
	d.Documents = documentViews(e)
	for i, en := range d.Timeline {
		if en.Type == domain.EngagementDocumentAttached {
			if j := slices.IndexFunc(history, func(ev domain.Event) bool { return ev.ID == en.ID }); j >= 0 {
				d.Timeline[i].Facts = documentFacts(e, history[j])
			}
		}
	}
	if !d.CanWrite {
		return d, nil
	}
	d.Upload = u.uploadForm(e, "")
	version := e.Version()
	for _, t := range u.eventTypes(e.Kind()) {
		f := u.eventForm(e, t)
		fv, ok := u.offer(e, f, formID(t, ""), version, titles, sub)
		if ok {
			d.Forms = append(d.Forms, fv)
		}
	}
	for i, en := range d.Timeline {
		if en.Type == domain.EngagementCorrected || en.Cut || specOf(en.Type).Upload {
			continue // a cut entry is corrected on its own page, in full; a document is superseded, not corrected
		}
		if spec, _ := domain.SpecOf(en.Type); spec.System || spec.Erasure {
			continue // the service's reminders are not corrected
		}
		f := u.correctionForm(e, history, history[slices.IndexFunc(history, func(ev domain.Event) bool { return ev.ID == en.ID })])
		if fv, ok := u.offer(e, f, formID(domain.EngagementCorrected, en.ID), version, titles, sub); ok {
			d.Timeline[i].Correct = &fv
		}
	}
	return d, nil
}

// offer asks the domain whether f may be recorded now and, if so, renders
// it, with the user's values and the domain's messages when sub is this form.
func (u *UI) offer(e *domain.Engagement, f *form, id string, version int, titles map[string]string, sub *submitted) (formView, bool) {
	req, err := required(f), allowed(e, f, u.now())
	mine := sub != nil && sub.typ == f.typ && (f.corrects == nil || f.corrects.ID == sub.corrects)
	// A form the domain just refused is shown with its messages even when
	// the event is not possible now (say, an occurred_at before signing);
	// otherwise only forms for events that may happen now are offered.
	complained := mine && (len(sub.errs.fields) > 0 || len(sub.errs.general) > 0)
	if err != nil && !complained {
		return formView{}, false
	}
	var values map[string]string
	var errs formError
	if mine {
		values, errs = sub.values, sub.errs
	}
	fv := u.formView(f, id, values, errs, req, e.ID(), titles)
	fv.Version = version
	fv.Action = "/engagements/" + e.ID() + "/events"
	if f.corrects != nil {
		fv.Corrects = f.corrects.ID
	}
	fv.Open = mine
	return fv, true
}

func formID(t domain.EventType, corrects string) string {
	id := "form-" + strings.ReplaceAll(string(t), ".", "-")
	if corrects != "" {
		id += "-" + corrects
	}
	return id
}

// eventTypes lists the types a form could record for kind k: the kind's own
// first, then the engagement.* ones; never recorded (new engagements have
// their own page) nor corrected (offered on each timeline entry), nor the
// reminders the service records itself.
func (u *UI) eventTypes(k domain.Kind) []domain.EventType {
	var own, common []domain.EventType
	for _, t := range domain.EventTypes {
		spec, _ := domain.SpecOf(t)
		switch {
		case t == domain.EngagementRecorded || t == domain.EngagementCorrected || !t.AppliesTo(k) || spec.Upload || spec.System || spec.Erasure:
			// an upload has its own form; the service records reminders itself
		case t.Prefix() == string(k):
			own = append(own, t)
		default:
			common = append(common, t)
		}
	}
	return append(own, common...)
}

// eventForm is the form of an event of type t for e. An amendment starts
// from the current values.
func (u *UI) eventForm(e *domain.Engagement, t domain.EventType) *form {
	f := &form{typ: t, fields: fieldDefs(t), choices: map[string][]option{}}
	v := e.View()
	switch t {
	case domain.EngagementAmended:
		f.fields = fieldsFor(e.Kind(), f.fields)
		f.baseline = stateValues(e)
	case domain.EngagementActionAssigned:
		// The id is made up here: people name the action, not its key.
		f.fields = slices.DeleteFunc(slices.Clone(f.fields), func(d fieldDef) bool { return d.Name == "action_id" })
		f.generated = map[string]func() string{"action_id": uuid.NewString}
	case domain.EngagementActionCompleted, domain.EngagementActionCancelled:
		for _, a := range v.Actions {
			if a.Status == domain.ActionOpen {
				f.choices["action_id"] = append(f.choices["action_id"],
					option{Value: a.ID, Label: a.Title + " (" + a.Owner + ", due " + a.DueOn + ")"})
			}
		}
	case domain.EngagementFocalPointAssigned:
		for _, p := range v.Parties {
			f.choices["party"] = append(f.choices["party"], option{Value: p, Label: p})
		}
	case domain.EngagementFocalPointReleased:
		seen := map[string]bool{}
		for _, p := range v.FocalPoints {
			if !seen[p.Party] {
				seen[p.Party] = true
				f.choices["party"] = append(f.choices["party"], option{Value: p.Party, Label: p.Party})
			}
			if !seen["name:"+p.Name] {
				seen["name:"+p.Name] = true
				f.choices["name"] = append(f.choices["name"], option{Value: p.Name, Label: p.Name})
			}
		}
	}
	return f
}

// correctionForm corrects ev, starting from what ev says now (with earlier
// corrections applied). The kind is never corrected.
func (u *UI) correctionForm(e *domain.Engagement, history []domain.Event, ev domain.Event) *form {
	defs := slices.DeleteFunc(slices.Clone(fieldDefs(ev.Type)), func(d fieldDef) bool { return d.Name == "kind" })
	if ev.Type == domain.EngagementRecorded {
		defs = fieldsFor(e.Kind(), defs)
	}
	f := &form{typ: domain.EngagementCorrected, fields: defs, corrects: &ev, baseline: dataValues(ev.Data)}
	for _, c := range history {
		if c.Type != domain.EngagementCorrected || !slices.Contains(ev.CorrectedBy, c.ID) {
			continue
		}
		if cd, err := domain.DecodeData[domain.CorrectedData](c); err == nil {
			for k, v := range dataValues(json.RawMessage(cd.Fields)) {
				f.baseline[k] = v
			}
		}
	}
	return f
}

// dataValues turns event data into form values: strings as they are, lists
// joined by ", ".
func dataValues(raw json.RawMessage) map[string]string {
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = valueText(v)
	}
	return out
}

func valueText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		parts := make([]string, 0, len(x))
		for _, p := range x {
			if s, ok := p.(string); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ", ")
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// stateValues are the engagement's current values of the fields of
// engagement.amended, the baseline of an amendment.
func stateValues(e *domain.Engagement) map[string]string {
	defs := fieldDefs(domain.EngagementAmended)
	out := make(map[string]string, len(defs))
	for i := range defs {
		out[defs[i].Name] = defs[i].State(e)
	}
	return out
}

// stateFacts are the engagement's current values worth showing, in order.
func stateFacts(e *domain.Engagement) []fact {
	var out []fact
	for _, x := range []struct {
		label string
		value string
		day   bool
	}{
		{"Parties", strings.Join(e.Parties(), ", "), false}, {"Instrument", words(e.Instrument()), false},
		{"Level", e.Level(), false}, {"Location", e.Location(), false}, {"Signed on", e.SignedOn(), true},
		{"Renewed on", e.RenewedOn(), true}, {"Expires on", e.ExpiresOn(), true},
		{"Reason for termination", e.TerminationReason(), false}, {"Adopted by", e.AdoptedBy(), false},
		{"Starts on", e.StartsOn(), true}, {"Role", e.Role(), false}, {"Delegation", e.Delegation(), false},
		{"Outcome", e.Outcome(), false}, {"Reason for leaving", e.LeftReason(), false},
		{"Tags", strings.Join(e.Tags(), ", "), false},
	} {
		if x.value != "" {
			out = append(out, fact{Label: x.label, Value: x.value, Day: x.day})
		}
	}
	return out
}

// titles maps every engagement id to its title, for links.
func (u *UI) titles() map[string]string {
	all := u.everything()
	out := make(map[string]string, len(all))
	for _, e := range all {
		out[e.ID()] = e.Title()
	}
	return out
}

// related lists the engagements e links to and those that link to it
// (found by scanning the portfolio as it is now), with their statuses on day.
func (u *UI) related(e *domain.Engagement, day time.Time) (out, in []related) {
	all := u.everything()
	byID := make(map[string]*domain.Engagement, len(all))
	for _, x := range all {
		byID[x.ID()] = x.Engagement
	}
	for _, l := range e.Links() {
		r := related{Relation: l.Relation, ID: l.TargetID, Title: l.TargetID}
		if t, ok := byID[l.TargetID]; ok {
			r.Title, r.Kind, r.Status = t.Title(), t.Kind(), t.StatusAt(day)
		}
		out = append(out, r)
	}
	for _, x := range all {
		for _, l := range x.Links() {
			if l.TargetID == e.ID() {
				in = append(in, related{Relation: l.Relation, ID: x.ID(), Title: x.Title(), Kind: x.Kind(), Status: x.StatusAt(day)})
			}
		}
	}
	return out, in
}

// entry renders one event of history.
func (u *UI) entry(ev domain.Event, history []domain.Event, titles map[string]string) entry {
	en := entry{ID: ev.ID, Type: ev.Type, Title: pastLabel(ev.Type), Occurred: ev.OccurredAt, Precision: ev.TimePrecision,
		Recorded: ev.RecordedAt, Actor: ev.Actor, Version: ev.Version}
	if ev.Type == domain.EngagementCorrected {
		c, _ := domain.DecodeData[domain.CorrectedData](ev)
		en.Corrects, en.Reason = c.Corrects, c.Reason
		if i := slices.IndexFunc(history, func(x domain.Event) bool { return x.ID == c.Corrects }); i >= 0 {
			en.CorrectsTitle = pastLabel(history[i].Type) + " (" + when(history[i].OccurredAt) + ")"
			en.Facts = facts(history[i].Type, json.RawMessage(c.Fields), titles)
		}
		return en
	}
	en.Facts = facts(ev.Type, ev.Data, titles)
	for _, id := range ev.CorrectedBy {
		i := slices.IndexFunc(history, func(x domain.Event) bool { return x.ID == id })
		if i < 0 {
			continue // outside the window shown
		}
		c := history[i]
		cd, _ := domain.DecodeData[domain.CorrectedData](c)
		en.CorrectedBy = append(en.CorrectedBy, correction{ID: c.ID, Actor: c.Actor, Recorded: c.RecordedAt,
			Reason: cd.Reason, Facts: facts(ev.Type, json.RawMessage(cd.Fields), titles)})
	}
	return en
}

// facts labels the data of an event of type t, in the order of its form.
func facts(t domain.EventType, data json.RawMessage, titles map[string]string) []fact {
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	var out []fact
	for _, d := range fieldDefs(t) {
		v, ok := m[d.Name]
		if !ok {
			continue
		}
		f := fact{Label: d.Label, Value: valueText(v), Day: d.Input == domain.InputDate, Wide: d.Input == domain.InputArea}
		switch d.Input {
		case domain.InputEngagement:
			f.Href = "/engagements/" + f.Value
			if title, ok := titles[f.Value]; ok {
				f.Value = title
			}
		case domain.InputSelect:
			f.Value = words(f.Value)
		}
		out = append(out, f)
		delete(m, d.Name)
	}
	for k, v := range m { // fields no form knows (not expected): shown as they are
		out = append(out, fact{Label: words(k), Value: valueText(v)})
	}
	return out
}

// formView renders f. values are what the user typed (nil: the baseline).
func (u *UI) formView(f *form, id string, values map[string]string, errs formError, required map[string]bool,
	self string, titles map[string]string) formView {
	if values == nil {
		values = f.baseline
	}
	fv := formView{ID: id, Type: f.typ, Title: actionLabel(f.typ), Key: randomToken(), Errors: errs.general}
	if f.corrects != nil {
		reason, _ := specOf(domain.EngagementCorrected).Field("reason")
		fv.Fields = append(fv.Fields, fieldView{ID: id + "-" + correctionReason, Name: correctionReason,
			Label: reason.Label, Input: "textarea", Value: values[correctionReason],
			Error: errs.fields[correctionReason], Required: required[correctionReason], Hint: reason.Hint})
	}
	for _, d := range f.fields {
		field := u.fieldView(d, id, values[d.Name], errs.fields[d.Name], required[d.Name], self, titles)
		if opts, ok := f.choices[d.Name]; ok {
			field.Input = "select"
			field.Options = []option{{Value: "", Label: "Choose…", Selected: field.Value == ""}}
			for _, o := range opts {
				o.Selected = o.Value == field.Value
				field.Options = append(field.Options, o)
			}
		}
		fv.Fields = append(fv.Fields, field)
	}
	if f.corrects == nil {
		fv.Occurred = fieldView{ID: id + "-" + occurredAt, Name: occurredAt, Label: "When did it happen?",
			Hint:  "A day (YYYY-MM-DD), or only the month (YYYY-MM) or year (YYYY) when no more is known; empty: now",
			Input: "text", Value: values[occurredAt], Error: errs.fields[occurredAt]}
	}
	return fv
}

func (u *UI) fieldView(d fieldDef, formID, value, msg string, required bool, self string, titles map[string]string) fieldView {
	fv := fieldView{ID: formID + "-" + d.Name, Name: d.Name, Label: d.Label, Hint: d.Hint, Value: value,
		Error: msg, Required: required}
	switch d.Input {
	case domain.InputArea:
		fv.Input = "textarea"
	case domain.InputDate:
		fv.Input = "date"
	case domain.InputNumber:
		fv.Input = "number"
	case domain.InputSelect:
		fv.Input = "select"
		fv.Options = append(fv.Options, option{Value: "", Label: "Choose…", Selected: value == ""})
		for _, o := range d.Options {
			fv.Options = append(fv.Options, option{Value: o, Label: words(o), Selected: o == value})
		}
	case domain.InputEngagement:
		fv.Input = "select"
		fv.Options = append(fv.Options, option{Value: "", Label: "Choose an engagement…", Selected: value == ""})
		for _, e := range u.everything() {
			if e.ID() != self {
				fv.Options = append(fv.Options, option{Value: e.ID(), Label: e.Title() + " (" + string(e.Kind()) + ")",
					Selected: e.ID() == value})
			}
		}
	default:
		fv.Input = "text"
	}
	return fv
}

// formValues collects what the browser sent for f's fields.
func formValues(r *http.Request, f *form) map[string]string {
	v := map[string]string{occurredAt: r.PostForm.Get(occurredAt), correctionReason: r.PostForm.Get(correctionReason)}
	for _, d := range f.fields {
		v[d.Name] = r.PostForm.Get(d.Name)
	}
	return v
}

// idempotencyKey is the form's key, scoped to the web UI; one that is not
// 1–100 visible ASCII characters is ignored.
func idempotencyKey(r *http.Request) string { return formKey(r.PostForm.Get("_key")) }

// appendEvent: POST /engagements/{id}/events from one of the page's forms.
func (u *UI) appendEvent(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if err := domain.CheckID(id); err != nil {
		u.failed(w, r, s, err)
		return
	}
	e, err := u.proj.Get(r.Context(), id, domain.Window{})
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	typ, err := domain.ParseEventType(r.PostForm.Get("type"))
	if err != nil || typ == domain.EngagementRecorded {
		u.errorPage(w, r, s, http.StatusBadRequest, "The form could not be read",
			"It did not say what to record. Go back, reload the page and try again.")
		return
	}
	version, err := strconv.Atoi(r.PostForm.Get("version"))
	if err != nil || version < 1 {
		u.errorPage(w, r, s, http.StatusBadRequest, "The form could not be read",
			"It did not say which version of the engagement it was filled in for. Reload the page and try again.")
		return
	}
	f := u.eventForm(e, typ)
	sub := &submitted{typ: typ}
	var sel historySel // the page shown again: the newest entries, or the one corrected
	if typ == domain.EngagementCorrected {
		sub.corrects = r.PostForm.Get("corrects")
		target, history, err := u.correctionTarget(r.Context(), id, sub.corrects)
		if err != nil {
			u.failed(w, r, s, err)
			return
		}
		if len(history) == 0 {
			u.errorPage(w, r, s, http.StatusBadRequest, "The form could not be read",
				"The entry to correct is not part of this engagement's history.")
			return
		}
		f = u.correctionForm(e, history, target)
		sel.entry = target.Version
	}
	sub.values = formValues(r, f)
	occurred, precision, err := parseOccurred(sub.values[occurredAt])
	if err == nil {
		_, err = u.svc.Execute(r.Context(), app.Command{EngagementID: id, Type: typ, OccurredAt: occurred, TimePrecision: precision,
			Data: f.data(sub.values), Actor: s.user.Name, ActorIssuer: s.user.Issuer, ActorSubject: s.user.Subject, IfMatch: version, IdempotencyKey: idempotencyKey(r)})
	}
	if err == nil {
		u.setFlash(s, "Saved: "+strings.ToLower(pastLabel(typ))+".")
		seeOther(w, r, "/engagements/"+id)
		return
	}
	if errors.Is(err, domain.ErrPreconditionFailed) {
		u.conflict(w, r, s, id, version, sel, sub)
		return
	}
	fe, ok := explain(f, err)
	if !ok {
		u.failed(w, r, s, err)
		return
	}
	sub.errs = fe
	d, err := u.engagementData(r.Context(), s, id, domain.Window{}, sel, sub)
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	d.Title = "Check the form: " + d.E.Title()
	if !d.showsForm() {
		// The refused event has no form on the page (a type this kind never
		// has): say why at the top instead.
		for _, fd := range f.fields {
			if m := fe.fields[fd.Name]; m != "" {
				d.Refused = append(d.Refused, fd.Label+": "+m)
			}
		}
		d.Refused = append(d.Refused, fe.general...)
	}
	u.render(w, statusOf(err), "engagement", d)
}

// correctionTarget reads the event of engagement id that a correction
// corrects, followed by its corrections so far (the form starts from what
// they say), from the stream; none if it is not one of its events.
func (u *UI) correctionTarget(ctx context.Context, id, corrects string) (domain.Event, []domain.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	h, err := u.proj.Events(ctx, id, corrects)
	if err != nil || len(h) == 0 {
		return domain.Event{}, nil, err
	}
	cs, err := u.proj.Events(ctx, id, h[0].CorrectedBy...)
	if err != nil {
		return domain.Event{}, nil, err
	}
	return h[0], append(h, cs...), nil
}

// conflict shows the engagement as it is now, what changed since the
// version the user saw (the first page of it), and their form filled in
// again, on the page sel. Nothing was stored.
func (u *UI) conflict(w http.ResponseWriter, r *http.Request, s *session, id string, seen int, sel historySel, sub *submitted) {
	d, err := u.engagementData(r.Context(), s, id, domain.Window{}, sel, sub)
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	since, err := u.proj.HistoryPage(ctx, id, projections.HistoryQuery{After: seen, Limit: historyPageSize})
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	c := &conflict{Allowed: d.showsForm(), More: since.Newer}
	for _, ev := range since.Events {
		en := entry{ID: ev.ID, Type: ev.Type, Title: pastLabel(ev.Type), Occurred: ev.OccurredAt, Precision: ev.TimePrecision, Actor: ev.Actor,
			Version: ev.Version, Href: sel.entryHref(id, ev)}
		if slices.ContainsFunc(d.Timeline, func(x entry) bool { return x.ID == ev.ID }) {
			en.Href = "#ev-" + ev.ID
		}
		c.Since = append(c.Since, en)
	}
	d.Conflict = c
	d.Title = "Changed meanwhile: " + d.E.Title()
	u.render(w, http.StatusConflict, "engagement", d)
}

func statusOf(err error) int {
	var m *domain.MalformedError
	if errors.As(err, &m) {
		return http.StatusBadRequest
	}
	return http.StatusUnprocessableEntity
}

type newData struct {
	base
	Form formView
}

// recordForm is the form of a new engagement.
func (u *UI) recordForm() *form {
	return &form{typ: domain.EngagementRecorded, fields: fieldDefs(domain.EngagementRecorded)}
}

// newPage: GET /engagements/new.
func (u *UI) newPage(w http.ResponseWriter, r *http.Request, s *session) {
	u.renderNew(w, s, http.StatusOK, nil, formError{})
}

func (u *UI) renderNew(w http.ResponseWriter, s *session, status int, values map[string]string, errs formError) {
	f := u.recordForm()
	fv := u.formView(f, "record", values, errs, required(f), "", nil)
	fv.Action = "/engagements/new"
	fv.Title = "Record an engagement"
	fv.Occurred.Label, fv.Occurred.Hint = "When did it begin?", "Leave empty for today; it may be decades back"
	recorded, _ := domain.SpecOf(domain.EngagementRecorded)
	for i, fd := range fv.Fields {
		def, known := recorded.Field(fd.Name)
		var kinds []string
		for _, k := range domain.Kinds {
			if !known || appliesTo(*def, k) {
				kinds = append(kinds, string(k))
			}
		}
		if len(kinds) < len(domain.Kinds) {
			fv.Fields[i].Kinds = strings.Join(kinds, " ")
			fv.Fields[i].Hint = strings.TrimSpace(kindLabel(domain.Kind(kinds[0])) + " only. " + fd.Hint)
			if len(kinds) > 1 {
				fv.Fields[i].Hint = strings.TrimSpace("For " + strings.Join(kinds, ", ") + ". " + fd.Hint)
			}
		}
	}
	u.render(w, status, "new", newData{base: u.base(s, "Record an engagement", "new"), Form: fv})
}

// create: POST /engagements/new.
func (u *UI) create(w http.ResponseWriter, r *http.Request, s *session) {
	f := u.recordForm()
	values := formValues(r, f)
	occurred, precision, err := parseOccurred(values[occurredAt])
	var res app.Result
	if err == nil {
		res, err = u.svc.Execute(r.Context(), app.Command{Type: domain.EngagementRecorded, OccurredAt: occurred, TimePrecision: precision,
			Data: f.data(values), Actor: s.user.Name, ActorIssuer: s.user.Issuer, ActorSubject: s.user.Subject, IdempotencyKey: idempotencyKey(r)})
	}
	if err == nil {
		u.setFlash(s, "Recorded. Add what has happened since with the forms on this page.")
		seeOther(w, r, "/engagements/"+url.PathEscape(res.EngagementID))
		return
	}
	fe, ok := explain(f, err)
	if !ok {
		u.failed(w, r, s, err)
		return
	}
	u.renderNew(w, s, statusOf(err), values, fe)
}
