package webui

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/iom-who/engagements/domain"
)

// Auditing is what the auditor's pages need of the store beyond the
// projection: verification with progress, the whole log exported as a
// file, and the first stream sequence recorded at or after a time (the
// log's date filter). app/stack wires the event store and the API's export.
type Auditing interface {
	Verify(ctx context.Context, progress func(done, total uint64)) (domain.Report, error)
	Export(ctx context.Context, w io.Writer, format string) error
	SequenceSince(ctx context.Context, t time.Time) (uint64, error)
}

// WithAuditing turns on the auditor's pages: /verify (run verify from the
// browser and see its progress and result) and /export.ndjson, /export.csv.
func WithAuditing(a Auditing) Option { return func(c *config) { c.auditing = a } }

// auditors may run verify and export, as through the API.
var auditors = []domain.Role{domain.RoleAuditor}

// verifyRun is the instance's latest verification: one runs at a time.
type verifyRun struct {
	mu                sync.Mutex
	running           bool
	done, total       uint64
	by                string
	started, finished time.Time
	report            *domain.Report
	err               string
}

// verifyData is the verify page.
type verifyData struct {
	base
	Running, Ran      bool
	Done, Total       uint64
	Percent           int
	By                string
	Started, Finished time.Time
	Report            *domain.Report
	Err               string
}

// verifyPage is GET /verify: the latest run on this instance, refreshed
// each second while it runs (a Refresh header: no script needed).
func (u *UI) verifyPage(w http.ResponseWriter, r *http.Request, s *session) {
	v := &u.verifying
	v.mu.Lock()
	d := verifyData{base: u.base(s, "Verify", "verify"), Running: v.running, Ran: !v.started.IsZero(),
		Done: v.done, Total: v.total, By: v.by, Started: v.started, Finished: v.finished, Report: v.report, Err: v.err}
	v.mu.Unlock()
	if d.Total > 0 {
		d.Percent = int(min(d.Done, d.Total) * 100 / d.Total)
	}
	if d.Running {
		w.Header().Set("Refresh", "1")
	}
	u.render(w, http.StatusOK, "verify", d)
}

// runVerify is POST /verify: it starts a verification unless one runs
// already, and shows the page that follows it.
func (u *UI) runVerify(w http.ResponseWriter, r *http.Request, s *session) {
	v := &u.verifying
	v.mu.Lock()
	if !v.running {
		v.running, v.done, v.total, v.by = true, 0, 0, s.user.Name
		v.started, v.finished, v.report, v.err = u.now(), time.Time{}, nil, ""
		u.background.Go(func() {
			rep, err := u.auditing.Verify(u.ctx, func(done, total uint64) {
				v.mu.Lock()
				v.done, v.total = done, total
				v.mu.Unlock()
			})
			v.mu.Lock()
			defer v.mu.Unlock()
			v.running, v.finished = false, u.now()
			if err != nil {
				u.log.Warn("verify from the web pages failed", "err", err)
				v.err = "Verification could not finish: the event store did not answer. Try again."
				return
			}
			v.report = &rep
		})
	}
	v.mu.Unlock()
	seeOther(w, r, "/verify")
}

// export is GET /export.ndjson and /export.csv: every event of the log as a
// download, straight from the stream.
func (u *UI) export(format string) handler {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		ctype := map[string]string{"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}[format]
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Disposition", `attachment; filename="engagements-events.`+format+`"`)
		if err := u.auditing.Export(r.Context(), w, format); err != nil {
			// The status is sent: a cut file is all the browser can be told.
			u.log.Warn("export from the web pages failed", "format", format, "err", err)
		}
	}
}

// sinceSequence is the log's "recorded from" date as the sequence to start
// after; ok is false without auditing (the filter is then not offered).
func (u *UI) sinceSequence(ctx context.Context, day string) (after uint64, problem string, ok bool) {
	if u.auditing == nil {
		return 0, "", false
	}
	t, err := domain.ParseDate(day)
	if err != nil {
		return 0, err.Error(), true
	}
	seq, err := u.auditing.SequenceSince(ctx, t)
	if err != nil {
		return 0, "could not be looked up: " + err.Error(), true
	}
	// The next sequence when nothing was recorded since: an empty page.
	return max(seq, 1) - 1, "", true
}
