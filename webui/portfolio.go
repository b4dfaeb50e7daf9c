package webui

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
)

// pageSize is how many engagements the portfolio shows at a time.
const pageSize = 100

// maxQuery bounds the text filters, as the API does.
const maxQuery = 200

type filter struct {
	Kind, Status, Party, Q, AsOf string
	After                        string
}

// query is the filter as URL parameters, with overrides (empty removes).
func (f filter) query(override ...string) string {
	v := url.Values{}
	set := func(k, x string) {
		if x != "" {
			v.Set(k, x)
		}
	}
	set("kind", f.Kind)
	set("status", f.Status)
	set("party", f.Party)
	set("q", f.Q)
	set("as_of", f.AsOf)
	for i := 0; i+1 < len(override); i += 2 {
		v.Del(override[i])
		set(override[i], override[i+1])
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

type row struct {
	ID, Title, Href string
	Kind            domain.Kind
	Parties         []string
	Status          domain.Status
	Last            string
	LastAt          time.Time
}

type statusCount struct {
	Status domain.Status
	N      int
	Href   string
	Active bool
}

type kindCount struct {
	Kind     domain.Kind
	N        int
	Href     string
	Active   bool
	Statuses []statusCount
}

type portfolioData struct {
	base
	Filter   filter
	Errors   map[string]string
	Kinds    []option
	Statuses []option
	Parties  []string
	Counts   []kindCount
	Total    int // engagements matching the text, party and date filters
	Matching int // …and kind and status
	Rows     []row
	Next     string
	Filtered bool
	Live     string
}

// portfolio: GET / with kind, status, party, q, as_of and after.
func (u *UI) portfolio(w http.ResponseWriter, r *http.Request, s *session) {
	// Read first: live updates start after what the page shows.
	shown := u.proj.Applied()
	q := r.URL.Query()
	f := filter{Kind: q.Get("kind"), Status: q.Get("status"), Party: strings.TrimSpace(q.Get("party")),
		Q: strings.TrimSpace(q.Get("q")), AsOf: strings.TrimSpace(q.Get("as_of")), After: q.Get("after")}
	d := portfolioData{base: u.base(s, "Portfolio", "portfolio"), Errors: make(map[string]string)}
	pf := projections.Filter{Party: f.Party, Q: f.Q, Now: u.now()}
	if f.Kind != "" {
		if pf.Kind = domain.Kind(f.Kind); !pf.Kind.Valid() {
			d.Errors["kind"] = "must be agreement, policy, initiative or meeting"
			pf.Kind, f.Kind = "", ""
		}
	}
	if f.Status != "" {
		if pf.Status = domain.Status(f.Status); !domain.ValidStatus(pf.Status) {
			d.Errors["status"] = "is not a status of any kind"
			pf.Status, f.Status = "", ""
		}
	}
	for name, p := range map[string]*string{"party": &f.Party, "q": &f.Q} {
		if utf8.RuneCountInString(*p) > maxQuery {
			d.Errors[name] = "must be at most 200 characters"
			*p = ""
		}
	}
	pf.Party, pf.Q = f.Party, f.Q
	if f.AsOf != "" {
		t, err := domain.ParseDate(f.AsOf)
		if err != nil {
			d.Errors["as_of"] = err.Error()
			f.AsOf = ""
		} else {
			pf.Window.AsOf = endOfDay(t)
			pf.Now = pf.Window.AsOf
		}
	}
	if f.After != "" && domain.CheckID(f.After) == nil {
		pf.After = f.After
	} else {
		f.After = ""
	}
	d.Filter = f

	// Counts per kind and status: the text, party and date filters apply,
	// so the counts say what choosing a kind or status would show.
	all, _, err := u.proj.List(r.Context(), projections.Filter{Party: pf.Party, Q: pf.Q, Window: pf.Window, Now: pf.Now,
		Limit: u.proj.Count() + 1})
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	d.Total = len(all)
	parties := make(map[string]bool)
	for _, k := range domain.Kinds {
		kc := kindCount{Kind: k, Href: f.query("kind", string(k), "status", "", "after", ""), Active: f.Kind == string(k)}
		for _, st := range k.Statuses() {
			kc.Statuses = append(kc.Statuses, statusCount{Status: st,
				Href:   f.query("kind", string(k), "status", string(st), "after", ""),
				Active: f.Kind == string(k) && f.Status == string(st)})
		}
		for _, e := range all {
			if e.Kind() != k {
				continue
			}
			kc.N++
			st := e.StatusAt(pf.Now)
			for i := range kc.Statuses {
				if kc.Statuses[i].Status == st {
					kc.Statuses[i].N++
				}
			}
		}
		d.Counts = append(d.Counts, kc)
	}
	for _, e := range all {
		if (pf.Kind == "" || e.Kind() == pf.Kind) && (pf.Status == "" || e.StatusAt(pf.Now) == pf.Status) {
			d.Matching++
		}
	}
	for _, e := range u.everything() {
		for _, p := range e.Parties() {
			parties[p] = true
		}
	}
	for p := range parties {
		d.Parties = append(d.Parties, p)
	}
	slices.Sort(d.Parties)

	d.Kinds = []option{{Value: "", Label: "All kinds", Selected: f.Kind == ""}}
	for _, k := range domain.Kinds {
		d.Kinds = append(d.Kinds, option{Value: string(k), Label: kindPlural(k), Selected: f.Kind == string(k)})
	}
	d.Statuses = []option{{Value: "", Label: "Any status", Selected: f.Status == ""}}
	seen := make(map[domain.Status]bool)
	for _, k := range domain.Kinds {
		for _, st := range k.Statuses() {
			if !seen[st] {
				seen[st] = true
				d.Statuses = append(d.Statuses, option{Value: string(st), Label: words(string(st)), Selected: f.Status == string(st)})
			}
		}
	}

	pf.Limit = pageSize
	items, more, err := u.proj.List(r.Context(), pf)
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	for _, e := range items {
		rw := row{ID: e.ID(), Title: e.Title(), Kind: e.Kind(), Parties: e.Parties(), Status: e.StatusAt(pf.Now),
			Href: "/engagements/" + e.ID()}
		if f.AsOf != "" {
			rw.Href += "?as_of=" + url.QueryEscape(f.AsOf)
		}
		// The projection keeps each engagement's last change (within the
		// window when there is one): no row reads the stream.
		if last := e.LastChange; last.Type != "" {
			rw.Last, rw.LastAt = pastLabel(last.Type), last.OccurredAt
		}
		d.Rows = append(d.Rows, rw)
	}
	if more && len(items) > 0 {
		d.Next = f.query("after", items[len(items)-1].ID())
	}
	d.Filtered = f.Kind != "" || f.Status != "" || f.Party != "" || f.Q != "" || f.AsOf != ""
	d.Live = "/engagements/live?after=" + strconv.FormatUint(shown, 10)
	if f.AsOf != "" {
		d.Title = "Portfolio as of " + dayText(f.AsOf)
	}
	u.render(w, http.StatusOK, "portfolio", d)
}

// everything lists every engagement as it is now. Without a window List
// reads memory only and never blocks, so it needs no request's context.
func (u *UI) everything() []projections.Listed {
	all, _, _ := u.proj.List(context.Background(), projections.Filter{Limit: u.proj.Count() + 1})
	return all
}
