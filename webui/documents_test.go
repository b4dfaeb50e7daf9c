package webui_test

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
)

var pdfFile = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")

// uploadForm posts the page's upload form as a browser does: the fields in
// the form's order (fields: name, value pairs), the file last.
func (b *browser) uploadForm(path, filename, mediaType string, content []byte, fields ...string) page {
	b.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for i := 0; i+1 < len(fields); i += 2 {
		w.WriteField(fields[i], fields[i+1])
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filename))
	h.Set("Content-Type", mediaType)
	p, err := w.CreatePart(h)
	if err != nil {
		b.t.Fatal(err)
	}
	p.Write(content)
	w.Close()
	req, err := http.NewRequest(http.MethodPost, b.env.URL+path, &body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	return b.do(req)
}

// stored counts what the stream and the document bucket hold.
func (te *testEnv) stored(t *testing.T) (events, objects uint64) {
	t.Helper()
	ctx := context.Background()
	last, err := te.store.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := te.store.JetStream().Stream(ctx, "OBJ_"+eventstore.DocumentBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return last, info.State.Msgs
}

func TestDocumentsOnTheEngagementPage(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "1999-01-01", map[string]any{"kind": "agreement", "title": "IOM–WHO MOU", "parties": []string{"IOM", "WHO"}})
	page := "/engagements/" + id

	coordinator := te.browser(t)
	coordinator.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	p := coordinator.get(page)
	mustContain(t, p, "Documents", "No documents attached.", "Attach")
	csrf, key := hidden(t, p.body, "_csrf"), hidden(t, p.body, "_key")

	// Without the session's token first, nothing is read or stored.
	events, objects := te.stored(t)
	if p := coordinator.uploadForm(page+"/documents", "mou.pdf", "application/pdf", pdfFile, "_csrf", "forged"); p.status != http.StatusForbidden {
		t.Errorf("forged CSRF: %d", p.status)
	}
	if p := coordinator.uploadForm(page+"/documents", "mou.pdf", "application/pdf", pdfFile); p.status != http.StatusForbidden {
		t.Errorf("no CSRF: %d", p.status)
	}
	// A PNG declared as a PDF, and a name with a path: refused on the page.
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{0}, 32)...)
	p = coordinator.uploadForm(page+"/documents", "scan.pdf", "application/pdf", png, "_csrf", csrf)
	if p.status != http.StatusUnsupportedMediaType {
		t.Errorf("PNG as PDF: %d", p.status)
	}
	mustContain(t, p, "Not attached, nothing was stored", "This kind of file cannot be attached")
	p = coordinator.uploadForm(page+"/documents", "../mou.pdf", "application/pdf", pdfFile, "_csrf", csrf)
	if p.status != http.StatusUnprocessableEntity {
		t.Errorf("path in the name: %d", p.status)
	}
	mustContain(t, p, "The file's name must be a file name, without a path")
	if e, o := te.stored(t); e != events || o != objects {
		t.Errorf("refused uploads stored something: %d events (was %d), %d objects (was %d)", e, events, o, objects)
	}

	// The form as the page sends it; the same key twice stores once.
	for range 2 {
		p = coordinator.uploadForm(page+"/documents", "MOU signed 1999.pdf", "application/pdf", pdfFile,
			"_csrf", csrf, "_key", key, "occurred_at", "1999-05-01")
		if p.status != http.StatusSeeOther || p.location() != page+"#documents" {
			t.Fatalf("upload: %d %s %s", p.status, p.location(), text(p.body))
		}
	}
	e, err := te.proj.Get(context.Background(), id, domain.Window{})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Documents()) != 1 {
		t.Fatalf("documents %+v", e.Documents())
	}
	d := e.Documents()[0]
	if _, o := te.stored(t); o == objects || len(te.history(t, id)) != 2 {
		t.Errorf("after one upload sent twice: %d objects, history %d events", o, len(te.history(t, id)))
	}
	p = coordinator.get(page)
	mustContain(t, p, "Attached: MOU signed 1999.pdf.", "MOU signed 1999.pdf", "current", "by maria", "Document attached")
	if !strings.Contains(p.body, `href="`+page+`/documents/`+d.ID+`"`) {
		t.Errorf("no download link to %s", d.ID)
	}

	// A new version supersedes it; the page shows both.
	p = coordinator.uploadForm(page+"/documents", "MOU renewed 2019.pdf", "application/pdf", pdfFile,
		"_csrf", hidden(t, p.body, "_csrf"), "_key", hidden(t, p.body, "_key"), "supersedes", d.ID)
	if p.status != http.StatusSeeOther {
		t.Fatalf("new version: %d %s", p.status, text(p.body))
	}

	// An auditor sees the list and downloads, but has no form.
	auditor := te.browser(t)
	auditor.mustLogin(te.token(t, "audit", domain.RoleAuditor))
	p = auditor.get(page)
	mustContain(t, p, "MOU signed 1999.pdf", "superseded", "MOU renewed 2019.pdf", "Replaces MOU signed 1999.pdf")
	mustNotContain(t, p, "Attach")
	p = auditor.get(page + "/documents/" + d.ID)
	if p.status != http.StatusOK || p.body != string(pdfFile) || p.header.Get("Content-Type") != "application/pdf" ||
		p.header.Get("X-Content-Type-Options") != "nosniff" || p.header.Get("ETag") != `"`+d.SHA256+`"` ||
		!strings.HasPrefix(p.header.Get("Content-Disposition"), `attachment; filename="MOU signed 1999.pdf"`) {
		t.Errorf("download: %d %v", p.status, p.header)
	}
	// Another id: the last character changed (to "0", or to "1" when it is
	// "0" already).
	other := d.ID[:35] + "0"
	if other == d.ID {
		other = d.ID[:35] + "1"
	}
	if p := auditor.get(page + "/documents/" + other); p.status != http.StatusNotFound {
		t.Errorf("unknown document: %d", p.status)
	}
	if p := auditor.uploadForm(page+"/documents", "x.pdf", "application/pdf", pdfFile, "_csrf", hidden(t, auditor.get(page).body, "_csrf")); p.status != http.StatusForbidden {
		t.Errorf("auditor upload: %d", p.status)
	}
}
