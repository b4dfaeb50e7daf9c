package webui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/importer"
)

// The import page (GET /import) takes the spreadsheet template that
// `engagements import` takes. Uploading a file (POST /import) is its dry
// run: the page shows what would be recorded and every problem by sheet,
// row and column, and stores nothing. Confirming (POST /import/confirm)
// records the previewed file through app.Service.ExecuteBatch, the command
// path of POST /v1/batches, with the rows' idempotency keys (the CLI's
// keys: importing the same file again, from here or the CLI with the same
// token name, records nothing twice).
//
// Between the preview and the confirmation the file is kept in this
// instance's memory: bound to the session that uploaded it, for at most
// importHold, one per session, all of them within heldImportBudget. The
// confirm form names it by a random id and its sha256, and only that
// session may confirm it, only those bytes. A confirmation that finds no
// copy (it expired, the instance restarted, another instance answered)
// asks for the file again; nothing was stored.

// Limits of the import page.
const (
	// DefaultImportLimit is the largest file the page takes (WithImportLimit).
	DefaultImportLimit = 16 << 20
	// importHold is how long a previewed file waits for its confirmation.
	importHold = 30 * time.Minute
	// heldImports bounds the files kept at once, whatever their size: the
	// budget is heldImports times the file limit.
	heldImports = 4
	// importTimeout bounds reading an upload and running an import.
	importTimeout = 15 * time.Minute
	// previewRows bounds the engagements a preview lists (all are counted).
	previewRows = 200
)

// WithImportLimit sets the largest file the import page takes (default
// DefaultImportLimit, at most importer.MaxFileBytes); larger ones get 413.
func WithImportLimit(bytes int64) Option {
	return func(c *config) { c.importLimit = bytes }
}

// heldFile is an uploaded file waiting for its confirmation.
type heldFile struct {
	id      string
	session string
	name    string
	sum     string // hex sha256 of data
	data    []byte
	expires time.Time
}

// heldFiles keeps the previewed files of this instance.
type heldFiles struct {
	mu     sync.Mutex
	files  map[string]*heldFile // by id
	budget int64
}

// put keeps f, replacing the session's earlier file; the expired go first,
// then, while over the budget, the oldest.
func (h *heldFiles) put(f *heldFile, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.files == nil {
		h.files = make(map[string]*heldFile)
	}
	var total int64
	for id, g := range h.files {
		if g.session == f.session || now.After(g.expires) {
			delete(h.files, id)
			continue
		}
		total += int64(len(g.data))
	}
	for total+int64(len(f.data)) > h.budget && len(h.files) > 0 {
		var oldest *heldFile
		for _, g := range h.files {
			if oldest == nil || g.expires.Before(oldest.expires) {
				oldest = g
			}
		}
		delete(h.files, oldest.id)
		total -= int64(len(oldest.data))
	}
	h.files[f.id] = f
}

// take removes and returns the file id of session, if it is still held
// and its sha256 is sum.
func (h *heldFiles) take(id, session, sum string, now time.Time) *heldFile {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.files[id]
	if f == nil || f.session != session || !sameToken(f.sum, sum) {
		return nil
	}
	delete(h.files, id)
	if now.After(f.expires) {
		return nil
	}
	return f
}

// importPlanned is one engagement a preview lists.
type importPlanned struct {
	Row    int
	Key    string
	Kind   string
	Title  string
	Events int
}

// importData is the import page: the upload form, a preview, or the
// summary of an import.
type importData struct {
	base
	Max string
	// Name, Sum and Size describe the uploaded file.
	Name, Sum, Size string
	// Error is why the upload could not be read at all.
	Error    string
	Problems []importer.Problem
	// Unchecked counts events not checked after a problem of their engagement.
	Unchecked int
	// Engagements and Events count what would be (or was) recorded;
	// Planned lists the first previewRows engagements.
	Engagements, Events int
	Planned             []importPlanned
	More                int // engagements beyond Planned
	// HeldID names the file kept for the confirm form.
	HeldID string
	// Summary is set once the file was imported.
	Summary *importer.Summary
	// Totals adds the summary's engagements and events.
	Totals  struct{ Recorded, Existing int }
	Stopped string // why the import stopped before its end
}

func (u *UI) importData(s *session) importData {
	return importData{base: u.base(s, "Import a spreadsheet", "import"), Max: sizeText(u.importLimit)}
}

// importPage: GET /import, the upload form.
func (u *UI) importPage(w http.ResponseWriter, r *http.Request, s *session) {
	u.render(w, http.StatusOK, "import", u.importData(s))
}

// previewImport: POST /import, the dry run of an uploaded file. As with
// documents, the session's CSRF token must be the body's first part; the
// file follows and is read up to the limit.
func (u *UI) previewImport(w http.ResponseWriter, r *http.Request, s *session) {
	d := u.importData(s)
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(importTimeout))
	r.Body = http.MaxBytesReader(w, r.Body, u.importLimit+maxUploadField*4)
	mr, err := r.MultipartReader()
	if err != nil {
		d.Error = "The form was not sent as a file upload. Reload the page and try again."
		u.render(w, http.StatusBadRequest, "import", d)
		return
	}
	p, ok := u.filePart(w, r, s, mr, nil)
	if !ok {
		return
	}
	var filename string
	if p != nil {
		_, disp, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		filename = disp["filename"]
	}
	if filename == "" {
		d.Error = "Choose a file: an .xlsx workbook or a .csv file of the template."
		u.render(w, http.StatusUnprocessableEntity, "import", d)
		return
	}
	name := filepath.Base(strings.ReplaceAll(filename, `\`, "/"))
	if ext := strings.ToLower(filepath.Ext(name)); ext != ".xlsx" && ext != ".csv" {
		d.Error = "The file must be an .xlsx workbook or a .csv file of the template."
		u.render(w, http.StatusUnsupportedMediaType, "import", d)
		return
	}
	data, err := io.ReadAll(io.LimitReader(p, u.importLimit+1))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) || int64(len(data)) > u.importLimit {
		d.Error = "The file is too large: the page takes at most " + d.Max +
			". Split it, or import it with the command line (engagements import)."
		u.render(w, http.StatusRequestEntityTooLarge, "import", d)
		return
	}
	if err != nil {
		d.Error = "The upload was cut short. Try again."
		u.render(w, http.StatusBadRequest, "import", d)
		return
	}
	sum := sha256.Sum256(data)
	d.Name, d.Sum, d.Size = name, hex.EncodeToString(sum[:]), sizeText(int64(len(data)))
	plan, status := u.planImport(&d, data)
	if plan != nil && len(d.Problems) == 0 {
		f := &heldFile{id: randomToken(), session: s.ID, name: name, sum: d.Sum, data: data, expires: u.now().Add(importHold)}
		u.held.put(f, u.now())
		d.HeldID = f.id
	}
	d.Title = "Check the import: " + name
	u.render(w, status, "import", d)
}

// planImport reads and checks data (the file called d.Name) into d: what
// it would record and its problems. It returns the plan (nil when the
// file could not be read) and the page's status.
func (u *UI) planImport(d *importData, data []byte) (*importer.Plan, int) {
	f, problems, err := importer.ReadFrom(d.Name, bytes.NewReader(data))
	if err != nil {
		d.Error = "The file could not be read as the template: " + err.Error() + "."
		return nil, http.StatusUnprocessableEntity
	}
	var plan *importer.Plan
	if f != nil {
		plan = importer.Check(f, u.now())
		problems = append(problems, plan.Problems...)
		d.Unchecked = plan.Unchecked
		d.Engagements, d.Events = len(plan.Engagements), plan.Events()
		for _, e := range plan.Engagements[:min(len(plan.Engagements), previewRows)] {
			kind, _ := e.Body["kind"].(string)
			title, _ := e.Body["title"].(string)
			d.Planned = append(d.Planned, importPlanned{Row: e.Row.Num, Key: e.Key, Kind: kind, Title: title, Events: len(e.Events)})
		}
		d.More = d.Engagements - len(d.Planned)
	}
	importer.SortProblems(problems)
	d.Problems = problems
	if len(problems) > 0 {
		return plan, http.StatusUnprocessableEntity
	}
	return plan, http.StatusOK
}

// confirmImport: POST /import/confirm, the import of the file previewed.
func (u *UI) confirmImport(w http.ResponseWriter, r *http.Request, s *session) {
	d := u.importData(s)
	f := u.held.take(r.PostFormValue("upload"), s.ID, r.PostFormValue("sha256"), u.now())
	if f == nil {
		d.Error = "This preview is no longer kept: it was imported already, or it expired (a preview waits " +
			importHold.String() + "; a restart forgets it). This request stored nothing. Upload the file again " +
			"to see where it stands: what was imported is not recorded twice."
		u.render(w, http.StatusConflict, "import", d)
		return
	}
	d.Name, d.Sum, d.Size = f.name, f.sum, sizeText(int64(len(f.data)))
	d.Title = "Imported: " + f.name
	plan, status := u.planImport(&d, f.data)
	if status != http.StatusOK {
		u.render(w, status, "import", d)
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(importTimeout))
	ctx, cancel := context.WithTimeout(r.Context(), importTimeout)
	defer cancel()
	sum, err := importer.Import(ctx, commandBatcher{svc: u.svc, actor: s.user.Name, issuer: s.user.Issuer, subject: s.user.Subject}, plan, nil)
	d.Summary = &sum
	d.Totals.Recorded, d.Totals.Existing = sum.Recorded+sum.EventsRecorded, sum.Existing+sum.EventsExisting
	d.Problems = sum.Problems
	if err != nil {
		u.log.Warn("web import stopped", "file", f.name, "err", err)
		d.Stopped = "The import stopped before its end: " + err.Error() +
			". What was recorded stays; import the file again for the rest (nothing is recorded twice)."
		status = http.StatusServiceUnavailable
	}
	u.log.Info("web import", "actor", s.user.Name, "file", f.name, "sha256", f.sum,
		"recorded", sum.Recorded, "events_recorded", sum.EventsRecorded, "existing", sum.Existing+sum.EventsExisting,
		"refused", sum.Refused, "not_tried", sum.NotTried)
	u.render(w, status, "import", d)
}

// commandBatcher records the importer's batches through the command path
// of POST /v1/batches (app.Service.ExecuteBatch) as actor (with a
// directory person's issuer and subject), translating each command as the
// API's batch handler does.
type commandBatcher struct {
	svc                    *app.Service
	actor, issuer, subject string
}

// Batch runs cmds and answers each one's result as the API would.
func (b commandBatcher) Batch(ctx context.Context, cmds []map[string]any) ([]importer.Result, error) {
	bc := make([]app.BatchCommand, len(cmds))
	for i, m := range cmds {
		c, err := b.command(m)
		bc[i] = app.BatchCommand{Command: c, Err: err}
	}
	outs := b.svc.ExecuteBatch(ctx, bc)
	res := make([]importer.Result, len(outs))
	for i, o := range outs {
		res[i] = importer.Result{Index: i}
		if o.Err == nil {
			res[i].Status, res[i].EngagementID, res[i].Replayed = http.StatusCreated, o.Result.EngagementID, o.Replayed
			continue
		}
		var dep *app.DependencyError
		var invalid *domain.ValidationError
		switch {
		case errors.Is(o.Err, domain.ErrUnavailable), errors.Is(o.Err, context.Canceled),
			errors.Is(o.Err, context.DeadlineExceeded):
			return nil, fmt.Errorf("command %d: %w", i, o.Err)
		case errors.As(o.Err, &dep):
			res[i].Status = http.StatusFailedDependency
			res[i].Problem = &importer.Refusal{Title: "Failed dependency", Detail: o.Err.Error()}
		case errors.As(o.Err, &invalid):
			res[i].Status = http.StatusUnprocessableEntity
			res[i].Problem = &importer.Refusal{Title: "Validation failed", Detail: "one or more fields break the rules"}
			for _, f := range invalid.Fields {
				res[i].Problem.Errors = append(res[i].Problem.Errors, importer.FieldError{Field: f.Field, Message: f.Message})
			}
		case errors.Is(o.Err, domain.ErrNotFound):
			res[i].Status = http.StatusNotFound
			res[i].Problem = &importer.Refusal{Title: "Not found", Detail: o.Err.Error()}
		default:
			res[i].Status = http.StatusUnprocessableEntity
			res[i].Problem = &importer.Refusal{Title: "Refused", Detail: o.Err.Error()}
		}
	}
	return res, nil
}

// command is one of the importer's commands (op create or append, as POST
// /v1/batches takes them) as an app.Command.
func (b commandBatcher) command(m map[string]any) (app.Command, error) {
	c := app.Command{Actor: b.actor, ActorIssuer: b.issuer, ActorSubject: b.subject}
	rest := make(map[string]any, len(m))
	for k, v := range m {
		rest[k] = v
	}
	op, _ := rest["op"].(string)
	c.IdempotencyKey, _ = rest["idempotency_key"].(string)
	delete(rest, "op")
	delete(rest, "idempotency_key")
	if at, ok := rest["occurred_at"].(string); ok {
		t, precision, err := importer.ParseOccurred(at)
		if err == nil && (t.Year() < domain.MinYear || t.Year() > domain.MaxYear) {
			err = fmt.Errorf("year must be between %d and %d", domain.MinYear, domain.MaxYear)
		}
		if err != nil {
			return c, &domain.ValidationError{Fields: []domain.FieldError{{Field: occurredAt, Message: err.Error()}}}
		}
		c.OccurredAt, c.TimePrecision = t, precision
	}
	delete(rest, "occurred_at")
	var err error
	switch op {
	case "create":
		c.Type = domain.EngagementRecorded
		c.Data, err = json.Marshal(rest)
		return c, err
	case "append":
		c.EngagementID, _ = rest["engagement_id"].(string)
		if err := domain.CheckID(c.EngagementID); err != nil {
			return c, err
		}
		var typ string
		switch v := rest["type"].(type) {
		case domain.EventType:
			typ = string(v)
		case string:
			typ = v
		}
		if c.Type, err = domain.ParseEventType(typ); err != nil {
			return c, err
		}
		if data, ok := rest["data"]; ok {
			c.Data, err = json.Marshal(data)
		}
		return c, err
	}
	return c, fmt.Errorf("unknown batch op %q", op)
}
