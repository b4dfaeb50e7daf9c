package webui

import (
	"context"
	"encoding/csv"
	"maps"
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
	// KnownAt is "as known on": only what was recorded by the end of that day.
	KnownAt string
	// Sort is the column the rows are sorted by ("": creation order), Desc
	// reverses it; Page is the 1-based page.
	Sort string
	Desc bool
	Page int
}

// sortKeys are the columns the portfolio sorts by.
var sortKeys = []string{"kind", "title", "parties", "status", "expires", "last"}

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
	set("known_at", f.KnownAt)
	set("sort", f.Sort)
	if f.Desc {
		v.Set("dir", "desc")
	}
	if f.Page > 1 {
		v.Set("page", strconv.Itoa(f.Page))
	}
	for i := 0; i+1 < len(override); i += 2 {
		v.Del(override[i])
		set(override[i], override[i+1])
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// column is a sortable column heading: its link sorts by it, or reverses
// the order when it is the one sorted by.
type column struct {
	Key, Label, Href string
	// Sorted is "ascending" or "descending" when the rows are sorted by it.
	Sorted string
}

func columns(f filter) []column {
	labels := map[string]string{"kind": "Kind", "title": "Title", "parties": "Parties", "status": "Status",
		"expires": "Expires", "last": "Last change"}
	out := make([]column, 0, len(sortKeys))
	for _, k := range sortKeys {
		c := column{Key: k, Label: labels[k], Href: f.query("sort", k, "dir", "", "page", "", "after", "")}
		if f.Sort == k {
			c.Sorted = "ascending"
			if f.Desc {
				c.Sorted = "descending"
			} else {
				c.Href = f.query("sort", k, "dir", "desc", "page", "", "after", "")
			}
		}
		out = append(out, c)
	}
	return out
}

type row struct {
	ID, Title, Href string
	Kind            domain.Kind
	Parties         []string
	Status          domain.Status
	Last            string
	LastAt          time.Time
	// Expires is an agreement's expiry; DaysLeft the days to it.
	Expires  string
	DaysLeft int
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
	Prev     string
	// From and To number the rows shown (1-based) of Matching.
	From, To int
	Columns  []column
	// CSV downloads the filtered, sorted view (every page).
	CSV string
	// Coming is the "Coming up" panel: overdue items and the next 90 days
	// (today's portfolio only); ComingMore says more are due than shown.
	Coming     []projections.Upcoming
	ComingMore bool
	Filtered   bool
	Live       string
}

// comingLimit is how many dated items the portfolio's panel shows.
const comingLimit = 12

// portfolio: GET / with kind, status, party, q, as_of and after.
func (u *UI) portfolio(w http.ResponseWriter, r *http.Request, s *session) {
	// Read first: live updates start after what the page shows.
	shown := u.proj.Applied()
	d := portfolioData{base: u.base(s, "Portfolio", "portfolio"), Errors: make(map[string]string)}
	f, pf := u.portfolioFilter(r.URL.Query(), d.Errors)
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
	d.Counts, d.Matching = counts(f, pf, all)
	d.Parties = partiesOf(u.everything())
	d.Kinds, d.Statuses = choices(f)

	// Every engagement was just read (within a window, folded) for the
	// counts: the page is taken from them, sorted as asked.
	rows := matchingRows(all, f, pf)
	start := (f.Page - 1) * pageSize
	if f.After != "" { // a link of an earlier release: the page after an id
		start = len(rows)
		for i, rw := range rows {
			if rw.ID > f.After {
				start = i
				break
			}
		}
	}
	start = min(start, len(rows))
	end := min(start+pageSize, len(rows))
	d.Rows = rows[start:end]
	d.From, d.To = start+1, end
	page := start/pageSize + 1
	if end < len(rows) {
		d.Next = f.query("page", strconv.Itoa(page+1), "after", "")
	}
	if start > 0 {
		d.Prev = f.query("page", strconv.Itoa(max(page-1, 1)), "after", "")
		if page-1 <= 1 {
			d.Prev = f.query("page", "", "after", "")
		}
	}
	d.Columns = columns(f)
	d.CSV = strings.Replace(f.query("page", "", "after", ""), "/", "/portfolio.csv", 1)
	d.Filtered = f.Kind != "" || f.Status != "" || f.Party != "" || f.Q != "" || f.AsOf != ""
	d.Filtered = d.Filtered || f.KnownAt != ""
	if !d.Filtered {
		d.Coming, d.ComingMore = u.comingUp(pf.Now)
	}
	d.Live = "/engagements/live?after=" + strconv.FormatUint(shown, 10)
	if f.AsOf != "" {
		d.Title = "Portfolio as of " + dayText(f.AsOf)
	}
	if f.KnownAt != "" {
		d.Title += " as known on " + dayText(f.KnownAt)
	}
	u.render(w, http.StatusOK, "portfolio", d)
}

// portfolioCSV: GET /portfolio.csv with the portfolio's parameters — the
// filtered, sorted view as a spreadsheet, every page of it.
func (u *UI) portfolioCSV(w http.ResponseWriter, r *http.Request, s *session) {
	errs := make(map[string]string)
	f, pf := u.portfolioFilter(r.URL.Query(), errs)
	if len(errs) > 0 {
		msgs := make([]string, 0, len(errs))
		for _, k := range slices.Sorted(maps.Keys(errs)) {
			msgs = append(msgs, k+" "+errs[k])
		}
		u.errorPage(w, r, s, http.StatusBadRequest, "The download could not be made", strings.Join(msgs, "; ")+".")
		return
	}
	pf.Limit = u.proj.Count() + 1
	pf.Kind, pf.Status = "", ""
	all, _, err := u.proj.List(r.Context(), pf)
	if err != nil {
		u.failed(w, r, s, err)
		return
	}
	kind, status := domain.Kind(f.Kind), domain.Status(f.Status)
	rows := matchingRows(all, f, projections.Filter{Kind: kind, Status: status, Now: pf.Now})
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="engagements-portfolio.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "kind", "title", "parties", "status", "expires_on", "last_change", "last_change_on", "url"})
	for _, rw := range rows {
		last := ""
		if !rw.LastAt.IsZero() {
			last = rw.LastAt.UTC().Format(time.RFC3339)
		}
		_ = cw.Write([]string{rw.ID, string(rw.Kind), cell(rw.Title), cell(strings.Join(rw.Parties, ", ")), string(rw.Status),
			rw.Expires, rw.Last, last, rw.Href})
	}
	cw.Flush()
}

// cell keeps a spreadsheet from reading text as a formula (CSV injection):
// a value that starts with =, +, -, @, a tab or a carriage return gets a
// leading apostrophe.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// portfolioFilter reads the portfolio's parameters: the filter as the page
// shows it again (a parameter that is not valid is dropped, with its
// problem in errs) and as the projection takes it.
func (u *UI) portfolioFilter(q url.Values, errs map[string]string) (filter, projections.Filter) {
	f := filter{Kind: q.Get("kind"), Status: q.Get("status"), Party: strings.TrimSpace(q.Get("party")),
		Q: strings.TrimSpace(q.Get("q")), AsOf: strings.TrimSpace(q.Get("as_of")), After: q.Get("after"),
		Sort: q.Get("sort"), Desc: q.Get("dir") == "desc", Page: 1}
	pf := projections.Filter{Now: u.now()}
	if f.Sort != "" && !slices.Contains(sortKeys, f.Sort) {
		errs["sort"] = "is not a column"
		f.Sort = ""
	}
	if dir := q.Get("dir"); dir != "" && dir != "asc" && dir != "desc" {
		errs["dir"] = "must be asc or desc"
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 1_000_000 {
			errs["page"] = "must be a page number"
		} else {
			f.Page = n
		}
	}
	if f.Kind != "" {
		if pf.Kind = domain.Kind(f.Kind); !pf.Kind.Valid() {
			errs["kind"] = "must be agreement, policy, initiative or meeting"
			pf.Kind, f.Kind = "", ""
		}
	}
	if f.Status != "" {
		if pf.Status = domain.Status(f.Status); !domain.ValidStatus(pf.Status) {
			errs["status"] = "is not a status of any kind"
			pf.Status, f.Status = "", ""
		}
	}
	for name, p := range map[string]*string{"party": &f.Party, "q": &f.Q} {
		if utf8.RuneCountInString(*p) > maxQuery {
			errs[name] = "must be at most 200 characters"
			*p = ""
		}
	}
	pf.Party, pf.Q = f.Party, f.Q
	if f.AsOf != "" {
		t, err := domain.ParseDate(f.AsOf)
		if err != nil {
			errs["as_of"] = err.Error()
			f.AsOf = ""
		} else {
			pf.Window.AsOf = endOfDay(t)
			pf.Now = pf.Window.AsOf
		}
	}
	if f.KnownAt = strings.TrimSpace(q.Get("known_at")); f.KnownAt != "" {
		t, err := domain.ParseDate(f.KnownAt)
		if err != nil {
			errs["known_at"] = err.Error()
			f.KnownAt = ""
		} else {
			pf.Window.KnownAt = endOfDay(t)
			if pf.Window.AsOf.IsZero() {
				pf.Now = pf.Window.KnownAt
			}
		}
	}
	if f.After != "" && domain.CheckID(f.After) == nil {
		pf.After = f.After
	} else {
		f.After = ""
	}
	return f, pf
}

// counts are the engagements of all per kind and status, with links that
// choose them, and how many of all match the kind and status chosen.
func counts(f filter, pf projections.Filter, all []projections.Listed) (kinds []kindCount, matching int) {
	for _, k := range domain.Kinds {
		kc := kindCount{Kind: k, Href: f.query("kind", string(k), "status", "", "after", ""), Active: f.Kind == string(k)}
		for _, st := range k.Statuses() {
			kc.Statuses = append(kc.Statuses, statusCount{Status: st,
				Href:   f.query("kind", string(k), "status", string(st), "after", ""),
				Active: f.Kind == string(k) && f.Status == string(st)})
		}
		kinds = append(kinds, kc)
	}
	for _, e := range all {
		ki := slices.Index(domain.Kinds, e.Kind())
		if ki < 0 {
			continue // folded engagements always have a kind of the contract
		}
		st := e.StatusAt(pf.Now)
		kc := &kinds[ki]
		kc.N++
		for i := range kc.Statuses {
			if kc.Statuses[i].Status == st {
				kc.Statuses[i].N++
			}
		}
		if (pf.Kind == "" || e.Kind() == pf.Kind) && (pf.Status == "" || st == pf.Status) {
			matching++
		}
	}
	return kinds, matching
}

// matchingRows are the rows of all (in id order, the text, party and date
// filters applied) of pf's kind and status, sorted as f says (stable, so
// equal values stay in creation order).
func matchingRows(all []projections.Listed, f filter, pf projections.Filter) []row {
	var rows []row
	for _, e := range all {
		if pf.Kind != "" && e.Kind() != pf.Kind || pf.Status != "" && e.StatusAt(pf.Now) != pf.Status {
			continue
		}
		rows = append(rows, rowOf(e, f, pf.Now))
	}
	cmp := func(a, b row) int {
		switch f.Sort {
		case "kind":
			return strings.Compare(string(a.Kind), string(b.Kind))
		case "title":
			return strings.Compare(strings.ToLower(a.Title), strings.ToLower(b.Title))
		case "parties":
			return strings.Compare(strings.ToLower(strings.Join(a.Parties, ", ")), strings.ToLower(strings.Join(b.Parties, ", ")))
		case "status":
			return strings.Compare(string(a.Status), string(b.Status))
		case "expires":
			switch { // no expiry sorts last either way
			case a.Expires == "" && b.Expires == "":
				return 0
			case a.Expires == "":
				return 1
			case b.Expires == "":
				return -1
			}
			return strings.Compare(a.Expires, b.Expires)
		case "last":
			return a.LastAt.Compare(b.LastAt)
		}
		return 0
	}
	if f.Sort != "" {
		slices.SortStableFunc(rows, func(a, b row) int {
			c := cmp(a, b)
			if f.Desc && !(f.Sort == "expires" && (a.Expires == "" || b.Expires == "")) {
				c = -c
			}
			return c
		})
	}
	return rows
}

// comingUp is the unfiltered portfolio's panel: overdue items and those
// due in the next 90 days.
func (u *UI) comingUp(now time.Time) ([]projections.Upcoming, bool) {
	items, next, err := u.proj.Upcoming(projections.UpcomingQuery{Now: now, Within: 90, Limit: comingLimit})
	if err != nil {
		return nil, false
	}
	return items, next != ""
}

// partiesOf lists the parties of all, sorted, each once.
func partiesOf(all []projections.Listed) []string {
	seen := make(map[string]bool)
	var out []string
	for _, e := range all {
		for _, p := range e.Parties() {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// choices are the kind and status menus of the filter form.
func choices(f filter) (kinds, statuses []option) {
	kinds = []option{{Value: "", Label: "All kinds", Selected: f.Kind == ""}}
	for _, k := range domain.Kinds {
		kinds = append(kinds, option{Value: string(k), Label: kindPlural(k), Selected: f.Kind == string(k)})
	}
	statuses = []option{{Value: "", Label: "Any status", Selected: f.Status == ""}}
	seen := make(map[domain.Status]bool)
	for _, k := range domain.Kinds {
		for _, st := range k.Statuses() {
			if !seen[st] {
				seen[st] = true
				statuses = append(statuses, option{Value: string(st), Label: words(string(st)), Selected: f.Status == string(st)})
			}
		}
	}
	return kinds, statuses
}

// rowOf is one engagement's row of the portfolio. The projection keeps each
// engagement's last change (within the window when there is one): no row
// reads the stream.
func rowOf(e projections.Listed, f filter, now time.Time) row {
	rw := row{ID: e.ID(), Title: e.Title(), Kind: e.Kind(), Parties: e.Parties(), Status: e.StatusAt(now),
		Href: "/engagements/" + e.ID()}
	q := url.Values{}
	if f.AsOf != "" {
		q.Set("as_of", f.AsOf)
	}
	if f.KnownAt != "" {
		q.Set("known_at", f.KnownAt)
	}
	if len(q) > 0 {
		rw.Href += "?" + q.Encode()
	}
	if last := e.LastChange; last.Type != "" {
		rw.Last, rw.LastAt = pastLabel(last.Type), last.OccurredAt
	}
	if e.Kind() == domain.KindAgreement && e.ExpiresOn() != "" {
		rw.Expires = e.ExpiresOn()
		rw.DaysLeft = domain.Deadline{On: rw.Expires}.DaysLeft(now)
	}
	return rw
}

// everything lists every engagement as it is now. Without a window List
// reads memory only and never blocks, so it needs no request's context.
func (u *UI) everything() []projections.Listed {
	all, _, _ := u.proj.List(context.Background(), projections.Filter{Limit: u.proj.Count() + 1})
	return all
}
