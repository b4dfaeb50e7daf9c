package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserImport drives the import page in headless Chromium against an
// empty store, as a coordinator bringing in an office's spreadsheet would:
// upload the example workbook (the browser's own multipart form), read the
// preview, confirm, see the summary and the portfolio; then import the same
// file again and see that nothing was recorded twice. Every page is saved
// as a screenshot in a directory the test logs.
func TestBrowserImport(t *testing.T) {
	chromium := findChromium(t)
	m := startMain(t, t.TempDir(), false)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	example, err := filepath.Abs("../../examples/import/iom-who.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(example); err != nil {
		t.Fatal(err)
	}
	shots, err := os.MkdirTemp("", "engagements-browser-import-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s", shots)
	a := newBrowser(t, chromium, m.URL(), shots)

	a.open("/login")
	a.do("type the token", chromedp.SendKeys(chromedp.ID("token"), testToken))
	if code := a.submit("sign in", "form[action='/login'] button[type=submit]"); code != 200 {
		a.fatalf("sign in: status %d, want 200", code)
	}
	a.mustSee("empty portfolio", "Nothing is recorded yet.", "Import a spreadsheet")
	if code := a.submit("open the import page", `//nav//a[normalize-space()='Import']`); code != 200 {
		a.fatalf("import page: status %d", code)
	}
	a.mustSee("import page", "Import a spreadsheet", "stores nothing")
	a.screenshot("import")

	a.do("choose the example", chromedp.SetUploadFiles(chromedp.ID("import-file"), []string{example}))
	if code := a.submit("preview", "#import-upload button[type=submit]"); code != 200 {
		a.fatalf("preview: status %d, want 200", code)
	}
	a.mustSee("preview", "iom-who.xlsx", "No problems: 16 engagements and 29 events would be recorded",
		"IOM–WHO Memorandum of Understanding", "Import 16 engagements and 29 events")
	if n := evaluate[int](a, "previewed rows", `document.querySelectorAll('#import-planned tbody tr').length`); n != 16 {
		a.fatalf("the preview lists %d engagements, want 16", n)
	}
	a.screenshot("import-preview")
	if n := streamLast(t, m); n != 0 {
		a.fatalf("the preview stored %d messages", n)
	}

	if code := a.submit("confirm", "#import-confirm button[type=submit]"); code != 200 {
		a.fatalf("confirm: status %d, want 200", code)
	}
	a.mustSee("summary", "iom-who.xlsx: imported", "Engagements: 16 recorded, 0 already recorded.",
		"Events: 29 recorded, 0 already recorded. 0 refused, 0 not tried.")
	a.screenshot("import-summary")
	if n := streamLast(t, m); n != 16+29 {
		a.fatalf("the import stored %d messages, want 45", n)
	}

	if code := a.submit("the portfolio", `//a[normalize-space()='Go to the portfolio']`); code != 200 {
		a.fatalf("portfolio: status %d", code)
	}
	a.mustSee("portfolio", "16 engagements", "IOM–WHO Memorandum of Understanding")
	a.screenshot("portfolio-imported")

	// The same file again: previewed and confirmed, nothing new.
	a.open("/import")
	a.do("choose the example again", chromedp.SetUploadFiles(chromedp.ID("import-file"), []string{example}))
	if code := a.submit("preview again", "#import-upload button[type=submit]"); code != 200 {
		a.fatalf("preview again: status %d", code)
	}
	if code := a.submit("confirm again", "#import-confirm button[type=submit]"); code != 200 {
		a.fatalf("confirm again: status %d", code)
	}
	a.mustSee("summary again", "Engagements: 0 recorded, 16 already recorded.", "Events: 0 recorded, 29 already recorded.")
	a.screenshot("import-again")
	if n := streamLast(t, m); n != 16+29 {
		a.fatalf("importing again stored %d messages more", n-45)
	}
}
