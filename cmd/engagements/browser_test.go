package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/proofs"
)

// Safety limits, not assertions on speed: a step that hangs fails the test
// instead of holding it until go test's own timeout.
const (
	browserTimeout = 2 * time.Minute  // the whole browser session
	stepTimeout    = 20 * time.Second // one navigation, form or wait
)

// TestBrowser drives the web UI as a coordinator does, in headless Chromium,
// against the same Main that serve runs, with the demo data: sign in, the
// portfolio and its filters, the MOU's history, recording and signing an
// agreement, a second tab that sees the signing live, and a stale form that
// is refused with the page saying what changed. Every page is saved as a
// screenshot in a directory the test logs, to look at.
func TestBrowser(t *testing.T) {
	chromium := findChromium(t)
	m := startMain(t, t.TempDir(), true)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	shots, err := os.MkdirTemp("", "engagements-browser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s", shots)
	a := newBrowser(t, chromium, m.URL(), shots) // tab A

	// Sign in with the admin token.
	a.open("/login")
	a.mustSee("sign-in page", "Sign in", "Access token")
	a.screenshot("login")
	a.do("type the token", chromedp.SendKeys(chromedp.ID("token"), testToken))
	if code := a.submit("sign in", "form[action='/login'] button[type=submit]"); code != 200 {
		a.fatalf("sign in: status %d, want 200", code)
	}

	// The portfolio: the 16 seed engagements.
	a.mustSee("portfolio", "Portfolio", "16 engagements", "admin", "Sign out")
	if n := rows(a); n != 16 {
		a.fatalf("portfolio: %d rows, want 16", n)
	}
	a.screenshot("portfolio")

	// The portfolio opens with what is coming up.
	a.mustSee("coming up", "Coming up", "Action due: Review the MOU's implementation with WHO (example)")
	titles := `[...document.querySelectorAll('table.portfolio tbody th[data-label=Title] a')].map(a => a.textContent.trim())`
	// Sort by title, then the other way.
	if code := a.submit("sort by title", `//th/a[starts-with(normalize-space(), 'Title')]`); code != 200 {
		a.fatalf("sort: status %d", code)
	}
	asc := evaluate[[]string](a, "titles ascending", titles)
	if !slices.IsSortedFunc(asc, func(x, y string) int { return strings.Compare(strings.ToLower(x), strings.ToLower(y)) }) {
		a.fatalf("sorted by title: %v", asc)
	}
	if code := a.submit("sort by title, descending", `//th/a[starts-with(normalize-space(), 'Title')]`); code != 200 {
		a.fatalf("sort: status %d", code)
	}
	desc := evaluate[[]string](a, "titles descending", titles)
	if len(desc) != len(asc) || desc[0] != asc[len(asc)-1] {
		a.fatalf("descending %v after ascending %v", desc, asc)
	}
	a.screenshot("portfolio-sorted")

	// Filter to meetings.
	a.do("choose meetings", chromedp.SetValue(chromedp.ID("f-kind"), "meeting"))
	if code := a.submit("apply the filter", "form.filters button[type=submit]"); code != 200 {
		a.fatalf("filter: status %d, want 200", code)
	}
	a.mustSee("meetings", "4 of 16 engagements")
	if n := rows(a); n != 4 {
		a.fatalf("meetings: %d rows, want 4", n)
	}
	kinds := evaluate[[]string](a, "kinds shown",
		`[...document.querySelectorAll('table.portfolio tbody td[data-label=Kind]')].map(td => td.textContent.trim())`)
	if slices.ContainsFunc(kinds, func(k string) bool { return k != "Meeting" }) {
		a.fatalf("meetings filter shows kinds %v", kinds)
	}
	a.screenshot("meetings")

	// The MOU's timeline: signed in 1999, renewed in 2019.
	a.open("/")
	if code := a.submit("open the MOU", `//a[normalize-space()='IOM–WHO Memorandum of Understanding']`); code != 200 {
		a.fatalf("MOU: status %d, want 200", code)
	}
	a.mustSee("MOU", "IOM–WHO Memorandum of Understanding", "History", "Signed", "Renewed")
	dates := evaluate[[]string](a, "timeline dates",
		`[...document.querySelectorAll('.timeline .entry-when time')].map(t => t.textContent.trim())`)
	for _, year := range []string{"1999", "2019"} {
		if !slices.ContainsFunc(dates, func(d string) bool { return strings.HasSuffix(d, year) }) {
			a.fatalf("MOU timeline %v has no date in %s", dates, year)
		}
	}
	a.screenshot("mou")

	// Attach the signed MOU's scan with the page's form: the browser's own
	// multipart upload (the CSRF token first, the file last), then open it.
	scan := filepath.Join(t.TempDir(), "MOU signed 1999.pdf")
	pdf := "%PDF-1.4\n% the signed MOU, scanned\n%%EOF\n"
	if err := os.WriteFile(scan, []byte(pdf), 0o600); err != nil {
		t.Fatal(err)
	}
	a.do("choose the scan", chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{scan}),
		chromedp.SetValue(chromedp.ID("upload-occurred"), "1999-05-01"))
	if code := a.submit("attach the scan", "form.upload-form button[type=submit]"); code != 200 {
		a.fatalf("attach: status %d, want 200", code)
	}
	a.mustSee("attached scan", "Attached: MOU signed 1999.pdf.", "MOU signed 1999.pdf", "current", "Document attached")
	href := evaluate[string](a, "the scan's link", `document.querySelector('.documents a').getAttribute('href')`)
	var got struct{ Type, Sniff, Disposition, Body string }
	{
		ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch('`+href+`').then(async r => JSON.stringify({
			Type: r.headers.get('Content-Type'), Sniff: r.headers.get('X-Content-Type-Options'),
			Disposition: r.headers.get('Content-Disposition'), Body: await r.text()}))`, chromedp.EvalAwaitPromise))
		cancel()
		if err == nil {
			err = json.Unmarshal([]byte(v), &got)
		}
		if err != nil {
			a.fatalf("download: %v", err)
		}
	}
	if got.Body != pdf || got.Type != "application/pdf" || got.Sniff != "nosniff" ||
		!strings.HasPrefix(got.Disposition, `attachment; filename="MOU signed 1999.pdf"`) {
		a.fatalf("downloaded %+v, uploaded %q", got, pdf)
	}
	a.screenshot("mou-document")

	// The desk on the MOU's page: its term, focal point, action item, and a
	// timeline where 1999 and 2019 are twenty years apart.
	a.mustSee("MOU desk", "Term", "open-ended", "Focal points", "Action items", "Review the MOU's implementation with WHO (example)")
	gap := evaluate[float64](a, "1999 → 2019 on the drawing", `(() => {
		const cs = [...document.querySelectorAll('svg.timeline-svg circle')];
		const x = t => +cs.find(c => c.querySelector('title').textContent.startsWith(t)).getAttribute('cx');
		return x('Renewed') - x('Signed'); })()`)
	if span := float64(time.Now().Year()-1999) + 1; gap < 752*20/span*0.9 {
		a.fatalf("1999 → 2019 is %.0f px of 752 on the drawing (%.0f years shown)", gap, span)
	}
	a.do("complete the action item", chromedp.Click(chromedp.CSS("#form-engagement-action_completed > summary")),
		chromedp.SetValue(chromedp.ID("form-engagement-action_completed-action_id"), "mou-review"),
		chromedp.SendKeys(chromedp.ID("form-engagement-action_completed-outcome"), "Reviewed with WHO"))
	if code := a.submit("complete", "#form-engagement-action_completed button[type=submit]"); code != 200 {
		a.fatalf("complete: status %d, want 200", code)
	}
	a.mustSee("action done", "Saved: action completed.", "Reviewed with WHO")
	a.screenshot("mou-desk")

	// Every engagement on one axis.
	a.open("/timeline")
	a.mustSee("timeline", "Timeline", "IOM–WHO Memorandum of Understanding", "UNGA High-Level Meeting on Universal Health Coverage")
	a.screenshot("timeline")

	// Record a new agreement.
	if code := a.submit("open the new-engagement page", "nav a[href='/engagements/new']"); code != 200 {
		a.fatalf("new-engagement page: status %d, want 200", code)
	}
	a.mustSee("new-engagement page", "Record an engagement")
	a.do("choose agreement", chromedp.SetValue(chromedp.ID("record-kind"), "agreement"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('record-kind').dispatchEvent(new Event('change'))`))
	if !evaluate[bool](a, "fields that do not apply",
		`(() => { const other = [...document.querySelectorAll('#record [data-kinds]')]
			.filter(f => !f.dataset.kinds.split(' ').includes('agreement'));
			return other.length > 0 && other.every(f => f.hidden); })()`) {
		a.fatalf("fields for other kinds are shown for an agreement")
	}
	const title = "IOM–UNHCR data-sharing agreement"
	a.do("fill in the agreement",
		chromedp.SendKeys(chromedp.ID("record-title"), title),
		chromedp.SendKeys(chromedp.ID("record-parties"), "IOM, UNHCR"),
		chromedp.SendKeys(chromedp.ID("record-tags"), "data"),
		chromedp.SetValue(chromedp.ID("record-occurred_at"), "2024-10-01"))
	a.screenshot("new")
	if code := a.submit("record", "form#record button[type=submit]"); code != 200 {
		a.fatalf("record: status %d, want 200", code)
	}
	a.mustSee("new agreement", title, "Recorded. Add what has happened since", "draft", "IOM · UNHCR")
	id := evaluate[string](a, "engagement id", `location.pathname.split('/').pop()`)
	a.screenshot("recorded")

	// A second tab on the portfolio sees the signing live, without a reload.
	b := a.newTab("B")
	b.open("/?kind=agreement")
	rowStatus := `(document.querySelector('a[href="/engagements/` + id + `"]')?.closest('tr').querySelector('.badge').textContent.trim() ?? '')`
	if st := evaluate[string](b, "status in the portfolio", rowStatus); st != "draft" {
		b.fatalf("new agreement in the portfolio: status %q, want draft", st)
	}
	b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.sameDocument = true`))

	// Sign it on its page (tab A).
	a.do("open the signing form", chromedp.Click(chromedp.CSS("#form-agreement-signed > summary")),
		chromedp.SetValue(chromedp.ID("form-agreement-signed-signed_on"), "2024-11-02"),
		chromedp.SetValue(chromedp.ID("form-agreement-signed-expires_on"), "2029-11-01"),
		chromedp.SetValue(chromedp.ID("form-agreement-signed-occurred_at"), "2024-11-02"))
	if code := a.submit("sign", "#form-agreement-signed button[type=submit]"); code != 200 {
		a.fatalf("sign: status %d, want 200", code)
	}
	a.mustSee("signed agreement", "Saved: signed.", "active", "2 Nov 2024", "1 Nov 2029")
	a.screenshot("signed")

	b.waitFor("the portfolio to show the signing", rowStatus+` === 'active' && document.getElementById('live-status').textContent.startsWith('Updated')`)
	if !evaluate[bool](b, "same document", `window.sameDocument === true`) {
		b.fatalf("the portfolio was reloaded, not updated in place")
	}
	b.screenshot("portfolio-live")

	// A stale form: tab A starts a note, tab B renews meanwhile, tab A saves.
	const note = "Checked the annex with the legal office"
	a.do("start a note", chromedp.Click(chromedp.CSS("#form-engagement-noted > summary")),
		chromedp.SendKeys(chromedp.ID("form-engagement-noted-note"), note))
	b.open("/engagements/" + id)
	b.do("renew", chromedp.Click(chromedp.CSS("#form-agreement-renewed > summary")),
		chromedp.SetValue(chromedp.ID("form-agreement-renewed-renewed_on"), "2025-01-15"),
		chromedp.SetValue(chromedp.ID("form-agreement-renewed-occurred_at"), "2025-01-15"))
	if code := b.submit("renew", "#form-agreement-renewed button[type=submit]"); code != 200 {
		b.fatalf("renew: status %d, want 200", code)
	}
	b.mustSee("renewed agreement", "Saved: renewed.")
	b.screenshot("renewed")

	// Tab A hears of it and keeps what was typed.
	a.waitFor("the engagement page to announce the renewal",
		`!document.getElementById('live-notice').hidden && document.getElementById('live-notice').textContent.includes('admin just recorded “Renewed”')`)
	if got := evaluate[string](a, "typed note", `document.getElementById('form-engagement-noted-note').value`); got != note {
		a.fatalf("the live notice changed the note being typed: %q", got)
	}
	a.screenshot("live-notice")

	if code := a.submit("save the stale note", "#form-engagement-noted button[type=submit]"); code != 409 {
		a.fatalf("stale form: status %d, want 409", code)
	}
	a.mustSee("conflict", "Someone changed this engagement meanwhile", "not saved", "admin recorded Renewed (15 Jan 2025)",
		"Your values are still in the form")
	if got := evaluate[string](a, "note kept", `document.getElementById('form-engagement-noted-note').value`); got != note {
		a.fatalf("the conflict page lost the note: %q", got)
	}
	a.screenshot("conflict")

	// Saving again, now for the current version, works.
	if code := a.submit("save the note again", "#form-engagement-noted button[type=submit]"); code != 200 {
		a.fatalf("save again: status %d, want 200", code)
	}
	a.mustSee("note saved", "Saved: note.", note)
	a.screenshot("noted")

	// The auditor's desk: page the log, run verify, see the result.
	a.open("/log")
	a.mustSee("event log", "Event log", "Recorded from", "Next events")
	a.screenshot("log")
	next := evaluate[string](a, "the log's next link", `document.querySelector('a[rel=next]').getAttribute('href')`)
	a.open(next)
	a.mustSee("the log's second page", "First page", "After sequence 50")
	a.open("/verify")
	a.mustSee("verify page", "Verify the record", "Verify now", "NDJSON", "CSV")
	if code := a.submit("verify", "form[action='/verify'] button[type=submit]"); code != 200 {
		a.fatalf("verify: status %d, want 200", code)
	}
	// The page refreshes itself while verify runs; open it as the refresh
	// would until it shows the result (verify of the seed takes milliseconds).
	for tries := 0; ; tries++ {
		a.open("/verify")
		if evaluate[bool](a, "verify finished", `document.getElementById('verify-result') !== null`) {
			break
		}
		if tries > 100 {
			a.fatalf("verify still running after %d page loads", tries)
		}
	}
	a.mustSee("verify result", "The record is intact", "Head", "Verify again")
	a.screenshot("verified")

	// A calendar feed: made on /feeds, its address shown once and copyable,
	// read without the browser's session (as a calendar app does), revoked.
	a.open("/feeds")
	a.mustSee("feeds page", "Calendar feeds", "No calendar feeds yet", "Create feed")
	a.do("name the feed", chromedp.SendKeys(chromedp.ID("f-name"), "My deadlines"))
	if code := a.submit("create a feed", "form[action='/feeds'] button[type=submit]"); code != 200 {
		a.fatalf("create a feed: status %d, want 200", code)
	}
	a.mustSee("the new feed", "Your new feed", "shown only once", "My deadlines")
	feed := evaluate[string](a, "the feed's address", `document.getElementById('feed-url').value`)
	if !strings.HasPrefix(feed, m.URL()+"/calendars/") || !strings.HasSuffix(feed, ".ics") {
		a.fatalf("the feed's address is %q", feed)
	}
	if !evaluate[bool](a, "the copy button", `!document.querySelector('button[data-copy]').hidden`) {
		a.fatalf("the copy button is hidden (the script did not run?)")
	}
	a.screenshot("feed-created")
	if code, ct := fetchStatus(t, feed); code != 200 || ct != "text/calendar; charset=utf-8" {
		a.fatalf("fetch the feed: %d %s", code, ct)
	}
	a.open("/feeds")
	if evaluate[bool](a, "the address again", `document.getElementById('feed-url') !== null`) {
		a.fatalf("the feed's address is shown a second time")
	}
	if code := a.submit("revoke the feed", "form[action$='/revoke'] button[type=submit]"); code != 200 {
		a.fatalf("revoke: status %d, want 200", code)
	}
	a.mustSee("revoked", "is revoked", "No calendar feeds yet")
	a.screenshot("feed-revoked")
	if code, _ := fetchStatus(t, feed); code != 404 {
		a.fatalf("a revoked feed: %d, want 404", code)
	}
	// Signed checkpoints: sign one, see its signature valid, download an
	// engagement's proof from its page; the proof checks out with the
	// public key alone.
	a.open("/checkpoints")
	a.mustSee("checkpoint page", "Signed checkpoints", "None yet", "BEGIN PUBLIC KEY")
	if code := a.submit("sign a checkpoint", "form[action='/checkpoints'] button[type=submit]"); code != 200 {
		a.fatalf("sign a checkpoint: status %d, want 200", code)
	}
	a.mustSee("signed checkpoint", "Signed checkpoint 1 at sequence", "1 checkpoint", "valid")
	a.screenshot("checkpoints")
	a.open("/")
	a.open(evaluate[string](a, "an engagement", `document.querySelector('table.portfolio tbody tr a[href^="/engagements/"]').getAttribute('href')`))
	href = evaluate[string](a, "the proof link", `document.getElementById('download-proof').getAttribute('href')`)
	proof := evaluate[string](a, "download the proof", "fetch("+strconv.Quote(href)+").then(r => r.ok ? r.text() : 'HTTP ' + r.status)",
		chromedp.EvalAwaitPromise)
	key, err := m.Proofs.Keys()[0].Public()
	if err != nil {
		t.Fatal(err)
	}
	if res, err := proofs.VerifyProof([]byte(proof), []ed25519.PublicKey{key}); err != nil || !strings.Contains(href, res.EngagementID) {
		a.fatalf("the proof downloaded from %s: %+v %v (%.200s)", href, res, err, proof)
	}

	// The portfolio on a phone.
	a.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	a.open("/")
	a.mustSee("portfolio on a phone", "17 engagements")
	a.screenshot("portfolio-phone")

	// Paging back: with more than a page of engagements.
	a.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
	for i := range 100 {
		if _, err := m.Service.Execute(context.Background(), app.Command{Type: domain.EngagementRecorded, Actor: "admin",
			Data: []byte(fmt.Sprintf(`{"kind":"initiative","title":"Network %03d","parties":["IOM"]}`, i))}); err != nil {
			a.fatalf("record: %v", err)
		}
	}
	a.open("/?sort=title&page=2")
	a.mustSee("page 2", "Showing 101–117 of 117", "Previous 100")
	if code := a.submit("page back", "a[rel=prev]"); code != 200 {
		a.fatalf("previous page: status %d", code)
	}
	a.mustSee("page 1", "Showing 1–100 of 117", "Next 100")
	a.screenshot("portfolio-page-1")
}

// fetchStatus GETs u without cookies or a token and returns the status and
// Content-Type.
func fetchStatus(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type")
}

// findChromium returns Chromium's path. Without it the test is skipped,
// except in CI, which must run it.
func findChromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/chromium"); statErr == nil {
			return "/usr/bin/chromium"
		}
		const msg = "chromium not installed: run `make test-browser` or apt-get install chromium"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: CI must run the browser tests; .ci/run installs it)")
		}
		t.Skip(msg)
	}
	return path
}

// tab is one browser tab, a chromedp context on the test's browser.
type tab struct {
	t     *testing.T
	name  string
	ctx   context.Context
	base  string // the server's URL
	shots string // where screenshots go
	n     *int   // screenshots taken, across tabs
	// console collects what the page logged as an error or exception.
	console *consoleLog
}

// newBrowser starts Chromium and returns its first tab. Cleanup closes the
// tabs and the browser and waits for it to exit, so no goroutine is left.
func newBrowser(t *testing.T, chromium, base, shots string) *tab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	var out syncWriter
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(&out),
	)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	a := &tab{t: t, name: "A", ctx: browserCtx, base: base, shots: shots, n: new(int), console: &consoleLog{}}
	t.Cleanup(func() {
		// The first tab's context owns the browser: closing it closes the
		// browser, and cancelAlloc waits until the process has exited.
		_ = chromedp.Cancel(browserCtx)
		cancelBrowser()
		cancelAlloc()
		cancel()
		a.console.wait()
		if t.Failed() {
			t.Logf("chromium's output:\n%s", out.String())
		}
		for _, m := range a.console.errors() {
			t.Errorf("browser console: %s", m)
		}
	})
	// The first Do starts the browser; its life is bound to browserCtx, not
	// to a step's timeout.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start chromium: %v\n%s", err, out.String())
	}
	a.console.follow(browserCtx, "A")
	return a
}

// newTab opens another tab on the same browser, with the same cookies: it
// is signed in as well.
func (tb *tab) newTab(name string) *tab {
	tb.t.Helper()
	ctx, cancel := chromedp.NewContext(tb.ctx)
	tb.t.Cleanup(func() { _ = chromedp.Cancel(ctx); cancel() }) // before the browser closes
	if err := chromedp.Do(ctx); err != nil {
		tb.t.Fatalf("open tab %s: %v", name, err)
	}
	nt := *tb
	nt.name, nt.ctx = name, ctx
	nt.console.follow(ctx, name)
	return &nt
}

// do runs steps within stepTimeout.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.fatalf("%s: %v", what, err)
	}
}

// evaluate returns the value of a JavaScript expression in tb's page.
func evaluate[T any](tb *tab, what, expr string, opts ...chromedp.EvaluateOption) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		tb.fatalf("%s: %v", what, err)
	}
	return v
}

// open loads path and fails unless it answers 200.
func (tb *tab) open(path string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(tb.base+path))
	if err != nil {
		tb.fatalf("open %s: %v", path, err)
	}
	if resp.Status != 200 {
		tb.fatalf("open %s: status %d", path, resp.Status)
	}
}

// submit clicks what sel finds (CSS, or XPath when it starts with /), waits
// for the page it leads to and returns that page's status.
func (tb *tab) submit(what, sel string) int {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	click := chromedp.Click(chromedp.CSS(sel))
	if strings.HasPrefix(sel, "/") {
		click = chromedp.Click(chromedp.Search(sel))
	}
	resp, err := chromedp.RunResponse(ctx, click)
	if err != nil {
		tb.fatalf("%s: %v", what, err)
	}
	return int(resp.Status)
}

// waitFor waits until a JavaScript expression is true, without reloading.
func (tb *tab) waitFor(what, expr string) {
	tb.t.Helper()
	tb.do("wait for "+what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(stepTimeout)))
}

// mustSee fails unless the page holds every text.
func (tb *tab) mustSee(what string, texts ...string) {
	tb.t.Helper()
	body := evaluate[string](tb, what, `document.body.textContent.replace(/\s+/g, ' ')`)
	for _, s := range texts {
		if !strings.Contains(body, s) {
			tb.fatalf("%s: the page does not say %q", what, s)
		}
	}
}

// screenshot saves the whole page as NN-tab-name.png.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	*tb.n++
	file := filepath.Join(tb.shots, fmt.Sprintf("%02d-%s-%s.png", *tb.n, tb.name, name))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// fatalf fails with where the tab is and what its page says, and keeps a
// screenshot of it.
func (tb *tab) fatalf(format string, args ...any) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	where, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(tb.shots, "failure-"+tb.name+".png"), png, 0o644)
	}
	tb.t.Fatalf("tab %s: %s\nat %s; the page says:\n%s", tb.name, fmt.Sprintf(format, args...), where, text)
}

// rows is how many engagements the portfolio table shows.
func rows(tb *tab) int {
	return evaluate[int](tb, "rows", `document.querySelectorAll('table.portfolio tbody tr').length`)
}

// consoleLog gathers the errors and exceptions pages log, from every tab.
type consoleLog struct {
	mu   sync.Mutex
	msgs []string
	wg   sync.WaitGroup
}

// follow reads ctx's console until its tab closes.
func (c *consoleLog) follow(ctx context.Context, name string) {
	messages := chromedp.Console(ctx)
	c.wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
				continue
			}
			// The stale form is answered 409 on purpose.
			if strings.Contains(m.Text, "status of 409") {
				continue
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, fmt.Sprintf("tab %s: %s (%s)", name, m.Text, m.URL))
			c.mu.Unlock()
		}
	})
}

func (c *consoleLog) wait() { c.wg.Wait() }

func (c *consoleLog) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// syncWriter is a buffer that Chromium's output goroutine and the test may
// share.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
