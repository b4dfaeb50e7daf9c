package webui_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/projections"
	"github.com/iom-who/engagements/webui"
)

// badCSV has two mistakes: the first engagement has no title (line 2,
// column D) and the second's signature is dated on a day that is none
// (line 4, column I).
const badCSV = `sheet,key,kind,title,parties,occurred_at,engagement,type,signed_on
engagements,mou,agreement,,"IOM, WHO",1999,,,
engagements,mou2,agreement,Second MOU,"IOM, WHO",2001,,,
events,,,,,2001,mou2,agreement.signed,2001-02-30
`

const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// lastSeq is the stream's last sequence: what has been stored.
func (te *testEnv) lastSeq(t *testing.T) uint64 {
	t.Helper()
	last, err := te.store.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return last
}

func TestImportPage(t *testing.T) {
	te := newTestEnv(t)
	example, err := os.ReadFile("../examples/import/iom-who.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	const engagements, events = 16, 29 // what engagements import --dry-run counts in it

	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	p := b.get("/")
	mustContain(t, p, "Import a spreadsheet")
	if !strings.Contains(p.body, `href="/import"`) {
		t.Error("the portfolio has no link to the import page")
	}
	p = b.get("/import")
	if p.status != http.StatusOK {
		t.Fatalf("GET /import: %d", p.status)
	}
	mustContain(t, p, "Import a spreadsheet", "stores nothing")
	csrf := hidden(t, p.body, "_csrf")

	// The dry run of a file with mistakes lists each by sheet, row and
	// column, offers no confirmation and stores nothing.
	p = b.uploadForm("/import", "office.csv", "text/csv", []byte(badCSV), "_csrf", csrf)
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("preview of a file with mistakes: %d\n%s", p.status, text(p.body))
	}
	mustContain(t, p, "2 problems. Nothing was stored.",
		"engagements 2 D (title) is required",
		"events 4 I (signed_on) must be a date as YYYY-MM-DD")
	if strings.Contains(p.body, `name="upload"`) {
		t.Error("a file with problems is offered for import")
	}
	if got := te.lastSeq(t); got != 0 {
		t.Fatalf("the preview stored %d messages", got)
	}

	// A file over the API's 1 MiB body limit is the page's to take.
	var big strings.Builder
	big.WriteString("sheet,key,kind,title,parties,description,occurred_at\n")
	for i := 0; big.Len() < 3<<19; i++ {
		fmt.Fprintf(&big, "engagements,k%d,initiative,Initiative %d,\"IOM, WHO\",%s,2001\n", i, i, strings.Repeat("d", 200))
	}
	p = b.uploadForm("/import", "big.csv", "text/csv", []byte(big.String()), "_csrf", csrf)
	if p.status != http.StatusOK {
		t.Fatalf("preview of a 1.5 MiB file: %d\n%.500s", p.status, text(p.body))
	}
	mustContain(t, p, "No problems:", "more engagements")

	// The example previews clean; nothing is stored until confirmed.
	p = b.uploadForm("/import", "iom-who.xlsx", xlsxType, example, "_csrf", csrf)
	if p.status != http.StatusOK {
		t.Fatalf("preview of the example: %d\n%s", p.status, text(p.body))
	}
	mustContain(t, p, "No problems: 16 engagements and 29 events would be recorded", "IOM–WHO Memorandum of Understanding")
	if got := te.lastSeq(t); got != 0 {
		t.Fatalf("the preview stored %d messages", got)
	}
	upload, sum := hidden(t, p.body, "upload"), hidden(t, p.body, "sha256")

	// A confirmation must carry the session's CSRF token, and the digest
	// of the file previewed.
	if p := b.post("/import/confirm", url.Values{"upload": {upload}, "sha256": {sum}}); p.status != http.StatusForbidden {
		t.Errorf("confirm without CSRF: %d", p.status)
	}
	if p := b.post("/import/confirm", url.Values{"_csrf": {csrf}, "upload": {upload}, "sha256": {strings.Repeat("0", 64)}}); p.status != http.StatusConflict {
		t.Errorf("confirm with another digest: %d", p.status)
	}
	if got := te.lastSeq(t); got != 0 {
		t.Fatalf("refused confirmations stored %d messages", got)
	}
	// The copy is still there for the right digest.
	p = b.post("/import/confirm", url.Values{"_csrf": {csrf}, "upload": {upload}, "sha256": {sum}})
	if p.status != http.StatusOK {
		t.Fatalf("confirm: %d\n%s", p.status, text(p.body))
	}
	mustContain(t, p, "iom-who.xlsx: imported",
		"Engagements: 16 recorded, 0 already recorded. Events: 29 recorded, 0 already recorded. 0 refused, 0 not tried.")
	if got := te.lastSeq(t); got != engagements+events {
		t.Fatalf("the import stored %d messages, want %d", got, engagements+events)
	}
	if n := te.proj.Count(); n != engagements {
		t.Errorf("the portfolio holds %d engagements, want %d", n, engagements)
	}
	hist := te.history(t, findByTitle(t, te, "IOM–WHO Memorandum of Understanding"))
	if len(hist) < 2 || hist[0].Actor != "maria" {
		t.Errorf("the MOU's history: %d events, first by %q", len(hist), hist[0].Actor)
	}

	// The same confirmation again finds no copy; nothing is stored.
	if p := b.post("/import/confirm", url.Values{"_csrf": {csrf}, "upload": {upload}, "sha256": {sum}}); p.status != http.StatusConflict {
		t.Errorf("confirm twice: %d", p.status)
	} else {
		mustContain(t, p, "no longer kept", "This request stored nothing.")
	}
	// The file imported again records nothing new.
	p = b.uploadForm("/import", "iom-who.xlsx", xlsxType, example, "_csrf", csrf)
	p = b.post("/import/confirm", url.Values{"_csrf": {csrf}, "upload": {hidden(t, p.body, "upload")}, "sha256": {hidden(t, p.body, "sha256")}})
	if p.status != http.StatusOK {
		t.Fatalf("import again: %d\n%s", p.status, text(p.body))
	}
	mustContain(t, p, "Engagements: 0 recorded, 16 already recorded. Events: 0 recorded, 29 already recorded.")
	if got := te.lastSeq(t); got != engagements+events {
		t.Errorf("importing again stored %d messages more", got-engagements-events)
	}

	// Another session cannot confirm maria's preview.
	p = b.uploadForm("/import", "iom-who.xlsx", xlsxType, example, "_csrf", csrf)
	upload, sum = hidden(t, p.body, "upload"), hidden(t, p.body, "sha256")
	other := te.browser(t)
	other.mustLogin(te.token(t, "ana", domain.RoleCoordinator))
	if p := other.submit("/import/confirm", url.Values{"upload": {upload}, "sha256": {sum}}); p.status != http.StatusConflict {
		t.Errorf("another session's confirmation: %d", p.status)
	}
}

// findByTitle is the id of the engagement with this title.
func findByTitle(t *testing.T, te *testEnv, title string) string {
	t.Helper()
	items, _, err := te.proj.List(context.Background(), projections.Filter{Q: title, Limit: 10, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Engagement.Title() == title {
			return it.Engagement.ID()
		}
	}
	t.Fatalf("no engagement %q", title)
	return ""
}

func TestImportPageRefusals(t *testing.T) {
	te := newTestEnv(t, webui.WithImportLimit(4<<10))
	auditor := te.browser(t)
	auditor.mustLogin(te.token(t, "audrey", domain.RoleAuditor))
	acsrf := hidden(t, auditor.get("/").body, "_csrf")
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	csrf := hidden(t, b.get("/import").body, "_csrf")
	large := []byte(strings.Repeat("engagements,k,agreement,A title,\"IOM, WHO\",1999,,,\n", 200))
	for _, tt := range []struct {
		name   string
		do     func() page
		status int
		says   string
	}{
		{"an auditor's import page → 403", func() page { return auditor.get("/import") }, http.StatusForbidden, "Read-only access"},
		{"an auditor's preview → 403", func() page {
			return auditor.uploadForm("/import", "office.csv", "text/csv", []byte(badCSV), "_csrf", acsrf)
		}, http.StatusForbidden, "Read-only access"},
		{"an auditor's confirmation → 403", func() page {
			return auditor.post("/import/confirm", url.Values{"_csrf": {acsrf}, "upload": {"x"}, "sha256": {"y"}})
		}, http.StatusForbidden, "Read-only access"},
		{"a forged CSRF token → 403", func() page {
			return b.uploadForm("/import", "office.csv", "text/csv", []byte(badCSV), "_csrf", "forged")
		}, http.StatusForbidden, "security token"},
		{"no CSRF token first → 403", func() page {
			return b.uploadForm("/import", "office.csv", "text/csv", []byte(badCSV))
		}, http.StatusForbidden, "security token"},
		{"a file over the limit → 413", func() page {
			return b.uploadForm("/import", "office.csv", "text/csv", append([]byte("sheet,key,kind,title,parties,occurred_at,engagement,type,signed_on\n"), large...), "_csrf", csrf)
		}, http.StatusRequestEntityTooLarge, "at most 4.0 KiB"},
		{"a PDF → 415", func() page {
			return b.uploadForm("/import", "mou.pdf", "application/pdf", pdfFile, "_csrf", csrf)
		}, http.StatusUnsupportedMediaType, "must be an .xlsx workbook or a .csv file"},
		{"a workbook that is not one → 422", func() page {
			return b.uploadForm("/import", "office.xlsx", xlsxType, []byte("not a zip"), "_csrf", csrf)
		}, http.StatusUnprocessableEntity, "could not be read as the template"},
		{"no file → 422", func() page {
			return b.uploadForm("/import", "", "application/octet-stream", nil, "_csrf", csrf)
		}, http.StatusUnprocessableEntity, "Choose a file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.do()
			if p.status != tt.status {
				t.Errorf("status %d, want %d\n%s", p.status, tt.status, text(p.body))
			}
			mustContain(t, p, tt.says)
			if bytes.Contains([]byte(p.body), []byte(`name="upload"`)) {
				t.Error("a refused upload is offered for import")
			}
			if got := te.lastSeq(t); got != 0 {
				t.Errorf("%d messages stored", got)
			}
		})
	}
}
