package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// Real files of the allowed types, small enough to read in a test.
var (
	pdfFile = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	pngFile = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{0}, 64)...)
)

// docxFile is a minimal Word document: a zip whose entries say so.
func docxFile(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for name, body := range map[string]string{
		"[Content_Types].xml": `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`,
		"word/document.xml":   `<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"/>`,
	} {
		w, err := z.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// document is a document as the API lists it.
type document struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	MediaType    string `json:"media_type"`
	Size         int64  `json:"size"`
	SHA256       string `json:"sha256"`
	Supersedes   string `json:"supersedes"`
	SupersededBy string `json:"superseded_by"`
	Current      bool   `json:"current"`
	Actor        string `json:"actor"`
	Href         string `json:"href"`
	Sequence     uint64 `json:"sequence"`
}

// multipartBody is a form with the fields (name, value pairs) and then the
// file part, declared as mediaType with filename as sent.
func multipartBody(t testing.TB, filename, mediaType string, content []byte, fields ...string) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		w.WriteField(fields[i], fields[i+1])
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filename))
	if mediaType != "" {
		h.Set("Content-Type", mediaType)
	}
	p, err := w.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	p.Write(content)
	w.Close()
	return &b, w.FormDataContentType()
}

// upload sends body to the engagement's documents with the headers.
func (ts *testServer) upload(t testing.TB, path string, body io.Reader, header ...string) response {
	t.Helper()
	req, err := ts.newRequest(http.MethodPost, path, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ts.send(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return r
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDocumentRoundTrip(t *testing.T) {
	as := newAuthServer(t, 0, 1)
	maria := bearer(as.mint(t, "maria", domain.RoleCoordinator))
	auditor := bearer(as.mint(t, "audit-office", domain.RoleAuditor))
	id := as.create(t, agreement("IOM–WHO MOU"), maria...)
	docs := "/v1/engagements/" + id + "/documents"

	// Multipart, as a browser or curl -F sends it.
	body, ct := multipartBody(t, "MOU 1999 (signed).pdf", "application/pdf", pdfFile, "occurred_at", "1999-05-01")
	r := as.upload(t, docs, body, append([]string{"Content-Type", ct}, maria...)...)
	if r.status != http.StatusCreated {
		t.Fatalf("multipart upload: %s", r)
	}
	first := decode[document](t, r)
	if first.Name != "MOU 1999 (signed).pdf" || first.MediaType != domain.MediaPDF || first.Size != int64(len(pdfFile)) ||
		first.SHA256 != digest(pdfFile) || !first.Current || first.Actor != "maria" || first.Sequence == 0 {
		t.Errorf("uploaded %+v", first)
	}
	if loc := r.header.Get("Location"); loc != docs+"/"+first.ID || first.Href != loc {
		t.Errorf("Location %q, href %q", loc, first.Href)
	}
	if r.header.Get("ETag") != `"`+first.SHA256+`"` {
		t.Errorf("ETag %q", r.header.Get("ETag"))
	}

	// Raw body, a new version superseding the first, its name in
	// Content-Disposition's filename* (UTF-8).
	docx := docxFile(t)
	r = as.upload(t, docs+"?supersedes="+first.ID, bytes.NewReader(docx), append([]string{
		"Content-Type", domain.MediaDOCX,
		"Content-Disposition", `attachment; filename*=UTF-8''Renouvellement%20%C3%A9t%C3%A9%202019.docx`}, maria...)...)
	if r.status != http.StatusCreated {
		t.Fatalf("raw upload: %s", r)
	}
	second := decode[document](t, r)
	if second.Name != "Renouvellement été 2019.docx" || second.Supersedes != first.ID || second.SHA256 != digest(docx) {
		t.Errorf("uploaded %+v", second)
	}

	for _, who := range [][]string{maria, auditor} {
		for _, tc := range []struct {
			doc   document
			bytes []byte
			disp  string
		}{
			{first, pdfFile, `attachment; filename="MOU 1999 (signed).pdf"; filename*=UTF-8''MOU%201999%20%28signed%29.pdf`},
			{second, docx, `attachment; filename="Renouvellement _t_ 2019.docx"; filename*=UTF-8''Renouvellement%20%C3%A9t%C3%A9%202019.docx`},
		} {
			r := as.get(t, docs+"/"+tc.doc.ID, who...)
			if r.status != http.StatusOK || !bytes.Equal(r.body, tc.bytes) {
				t.Fatalf("download %s: %d, %d bytes, want the %d uploaded", tc.doc.Name, r.status, len(r.body), len(tc.bytes))
			}
			for h, want := range map[string]string{"Content-Type": tc.doc.MediaType, "ETag": `"` + tc.doc.SHA256 + `"`,
				"X-Content-Type-Options": "nosniff", "Content-Disposition": tc.disp,
				"Content-Length": fmt.Sprint(len(tc.bytes))} {
				if got := r.header.Get(h); got != want {
					t.Errorf("%s: %s %q, want %q", tc.doc.Name, h, got, want)
				}
			}
			if r := as.get(t, docs+"/"+tc.doc.ID, append([]string{"If-None-Match", `"` + tc.doc.SHA256 + `"`}, who...)...); r.status != http.StatusNotModified {
				t.Errorf("If-None-Match with its ETag: %s", r)
			}
		}
	}

	list := decode[struct{ Items []document }](t, as.get(t, docs, auditor...))
	if len(list.Items) != 2 || list.Items[0].ID != first.ID || list.Items[0].Current || list.Items[0].SupersededBy != second.ID ||
		list.Items[1].ID != second.ID || !list.Items[1].Current {
		t.Errorf("list %+v", list.Items)
	}
	var types []string
	for _, ev := range decode[struct{ Events []event }](t, as.get(t, "/v1/engagements/"+id+"/history", maria...)).Events {
		types = append(types, ev.Type)
	}
	if want := "engagement.recorded engagement.document_attached engagement.document_attached"; strings.Join(types, " ") != want {
		t.Errorf("history %v, want %s", types, want)
	}
	rep := decode[domain.Report](t, as.get(t, "/v1/verify", auditor...))
	if !rep.OK || rep.Documents != 2 {
		t.Errorf("verify: %+v", rep)
	}
}

// bucketState is what the document bucket's stream holds: an upload that
// was refused must leave it as it was, chunks included.
func bucketState(t testing.TB, store *eventstore.Store) uint64 {
	t.Helper()
	s, err := store.JetStream().Stream(context.Background(), "OBJ_"+eventstore.DocumentBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestDocumentRefusals(t *testing.T) {
	b := buildServer(t, setup{tokens: true, maxDocument: 1024})
	ts := b.testServer
	admin := bearer(b.admin)
	mint := func(name string, role domain.Role) []string {
		tok, _, err := b.tokens.Create(context.Background(), name, role)
		if err != nil {
			t.Fatal(err)
		}
		return bearer(tok)
	}
	coordinator, auditor, subscriber := mint("maria", domain.RoleCoordinator), mint("audit", domain.RoleAuditor),
		mint("crm", domain.RoleSubscriber)
	id := ts.create(t, agreement("IOM–WHO MOU"), admin...)
	docs := "/v1/engagements/" + id + "/documents"
	big := append(bytes.Clone(pdfFile), bytes.Repeat([]byte("x"), 2048)...)
	form := func(name, mediaType string, content []byte, fields ...string) (io.Reader, []string) {
		body, ct := multipartBody(t, name, mediaType, content, fields...)
		return body, append([]string{"Content-Type", ct}, coordinator...)
	}
	raw := func(mediaType string, content []byte) (io.Reader, []string) {
		return bytes.NewReader(content), append([]string{"Content-Type", mediaType}, coordinator...)
	}
	tests := []struct {
		name   string
		path   string
		body   func() (io.Reader, []string)
		status int
		field  string
	}{
		{"oversize multipart → 413", docs, func() (io.Reader, []string) { return form("big.pdf", "application/pdf", big) }, 413, ""},
		{"oversize raw, sent chunked → 413", docs + "?name=big.pdf", func() (io.Reader, []string) {
			r, h := raw("application/pdf", big)
			return io.MultiReader(r), h // no length known: chunked
		}, 413, ""},
		{"a type off the allow-list → 415", docs + "?name=page.html", func() (io.Reader, []string) {
			return raw("text/html", []byte("<html><script>alert(1)</script></html>"))
		}, 415, ""},
		{"a PNG declared as PDF → 415", docs, func() (io.Reader, []string) { return form("scan.pdf", "application/pdf", pngFile) }, 415, ""},
		{"text declared as a PNG → 415", docs + "?name=x.png", func() (io.Reader, []string) { return raw("image/png", []byte("hello")) }, 415, ""},
		{"no type and an unknown extension → 415", docs, func() (io.Reader, []string) { return form("mou.bin", "", pdfFile) }, 415, ""},
		{"raw without Content-Type → 415", docs + "?name=mou.pdf", func() (io.Reader, []string) {
			return bytes.NewReader(pdfFile), append([]string{"Content-Type", ""}, coordinator...)
		}, 415, ""},
		{"a path-traversal filename → 422", docs, func() (io.Reader, []string) { return form("../../etc/passwd.pdf", "application/pdf", pdfFile) }, 422, "name"},
		{"a Windows path as filename → 422", docs, func() (io.Reader, []string) { return form(`C:\scans\mou.pdf`, "application/pdf", pdfFile) }, 422, "name"},
		{"a raw name with a slash → 422", docs + "?name=a%2Fb.pdf", func() (io.Reader, []string) { return raw("application/pdf", pdfFile) }, 422, "name"},
		{"a raw upload without a name → 422", docs, func() (io.Reader, []string) { return raw("application/pdf", pdfFile) }, 422, "name"},
		{"an empty file → 422", docs, func() (io.Reader, []string) { return form("empty.txt", "text/plain", nil) }, 422, "file"},
		{"no file part → 422", docs, func() (io.Reader, []string) {
			var b bytes.Buffer
			w := multipart.NewWriter(&b)
			w.WriteField("supersedes", newID())
			w.Close()
			return &b, append([]string{"Content-Type", w.FormDataContentType()}, coordinator...)
		}, 422, "file"},
		{"supersedes a document that does not exist → 422", docs, func() (io.Reader, []string) {
			return form("v2.pdf", "application/pdf", pdfFile, "supersedes", newID())
		}, 422, "data.supersedes"},
		{"an unknown form field → 400", docs, func() (io.Reader, []string) { return form("v2.pdf", "application/pdf", pdfFile, "owner", "x") }, 400, ""},
		{"an unknown engagement → 404", "/v1/engagements/" + newID() + "/documents", func() (io.Reader, []string) {
			return form("mou.pdf", "application/pdf", pdfFile)
		}, 404, ""},
		{"a stale If-Match → 412", docs, func() (io.Reader, []string) {
			r, h := form("mou.pdf", "application/pdf", pdfFile)
			return r, append(h, "If-Match", `"7"`)
		}, 412, ""},
		{"an auditor uploads → 403", docs, func() (io.Reader, []string) {
			r, h := form("mou.pdf", "application/pdf", pdfFile)
			return r, append(h, auditor...)
		}, 403, ""},
		{"a subscriber uploads → 403", docs, func() (io.Reader, []string) {
			r, h := form("mou.pdf", "application/pdf", pdfFile)
			return r, append(h, subscriber...)
		}, 403, ""},
		{"document_attached as a plain event → 422", "/v1/engagements/" + id + "/events", func() (io.Reader, []string) {
			d, _ := json.Marshal(map[string]any{"type": "engagement.document_attached", "data": map[string]any{
				"document_id": newID(), "name": "mou.pdf", "media_type": "application/pdf", "size": 10, "sha256": strings.Repeat("a", 64)}})
			return bytes.NewReader(d), append([]string{"Content-Type", "application/json"}, coordinator...)
		}, 422, "type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq, objects := ts.lastSequence(t), bucketState(t, b.store)
			body, header := tc.body()
			r := ts.upload(t, tc.path, body, header...)
			if r.status != tc.status || mediaType(r.header) != "application/problem+json" {
				t.Fatalf("got %s, want %d problem", r, tc.status)
			}
			if tc.field != "" {
				p := decode2[api.Problem](t, r)
				if len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
					t.Errorf("errors %+v, want one on %s", p.Errors, tc.field)
				}
			}
			if got := ts.lastSequence(t); got != seq {
				t.Errorf("the stream moved from %d to %d: an event was stored", seq, got)
			}
			if got := bucketState(t, b.store); got != objects {
				t.Errorf("the document bucket holds %d messages, %d before: something was stored", got, objects)
			}
		})
	}
	t.Run("readers: auditors list and download, subscribers may not", func(t *testing.T) {
		body, h := form("mou.pdf", "application/pdf", pdfFile)
		r := ts.upload(t, docs, body, h...)
		if r.status != http.StatusCreated {
			t.Fatalf("upload: %s", r)
		}
		d := decode[document](t, r)
		for _, tc := range []struct {
			path   string
			who    []string
			status int
		}{{docs, auditor, 200}, {docs + "/" + d.ID, auditor, 200}, {docs, subscriber, 403}, {docs + "/" + d.ID, subscriber, 403},
			{docs + "/" + newID(), auditor, 404}, {docs + "/not-an-id", auditor, 400}} {
			if r := ts.get(t, tc.path, tc.who...); r.status != tc.status {
				t.Errorf("GET %s: %s, want %d", tc.path, r, tc.status)
			}
		}
	})
}

// decode2 decodes a problem document.
func decode2[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T: %v; response %s", v, err, r)
	}
	return v
}

// TestVerifyNamesAlteredDocuments rewrites one document's object and deletes
// another's behind the service's back: verify names both, and the download
// of the rewritten one fails rather than serve other bytes.
func TestVerifyNamesAlteredDocuments(t *testing.T) {
	ts := newTestServer(t)
	id := ts.create(t, agreement("IOM–WHO MOU"))
	docs := "/v1/engagements/" + id + "/documents"
	var uploaded []document
	for _, name := range []string{"mou.pdf", "renewal.pdf", "annex.txt"} {
		content, ct := pdfFile, "application/pdf"
		if strings.HasSuffix(name, ".txt") {
			content, ct = []byte("Annex: signatories\n"), "text/plain; charset=utf-8"
		}
		r := ts.upload(t, docs+"?name="+name, bytes.NewReader(content), "Content-Type", ct)
		if r.status != http.StatusCreated {
			t.Fatalf("upload %s: %s", name, r)
		}
		uploaded = append(uploaded, decode[document](t, r))
	}
	if rep := decode[domain.Report](t, ts.get(t, "/v1/verify")); !rep.OK || rep.Documents != 3 {
		t.Fatalf("verify before: %+v", rep)
	}

	ctx := context.Background()
	obs, err := ts.store.JetStream().ObjectStore(ctx, eventstore.DocumentBucket)
	if err != nil {
		t.Fatal(err)
	}
	altered, removed := uploaded[0], uploaded[1]
	forged := bytes.Replace(pdfFile, []byte("Catalog"), []byte("Catalug"), 1) // same size, other bytes
	if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: altered.ID}, bytes.NewReader(forged)); err != nil {
		t.Fatal(err)
	}
	if err := obs.Delete(ctx, removed.ID); err != nil {
		t.Fatal(err)
	}
	stray := newID() // an object no event names
	if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: stray}, bytes.NewReader(pdfFile)); err != nil {
		t.Fatal(err)
	}

	rep := decode[domain.Report](t, ts.get(t, "/v1/verify"))
	if rep.OK || rep.Documents != 3 || len(rep.Problems) != 2 {
		t.Fatalf("verify after: %+v", rep)
	}
	named := map[string]string{}
	for _, p := range rep.Problems {
		named[p.DocumentID] = p.Problem
		if p.EngagementID != id || p.Sequence == 0 {
			t.Errorf("problem %+v", p)
		}
	}
	if !strings.Contains(named[altered.ID], "altered") || !strings.Contains(named[removed.ID], "missing") {
		t.Errorf("problems %+v, want %s altered and %s missing", rep.Problems, altered.ID, removed.ID)
	}
	if _, ok := named[uploaded[2].ID]; ok {
		t.Errorf("the untouched document is named: %+v", rep.Problems)
	}
	if len(rep.Unattached) != 1 || rep.Unattached[0].DocumentID != stray || rep.Unattached[0].StoredAt.IsZero() {
		t.Errorf("unattached %+v, want the stray object %s", rep.Unattached, stray)
	}
	if r := ts.get(t, docs+"/"+stray); r.status != http.StatusNotFound {
		t.Errorf("the stray object is served: %s", r)
	}

	// The rewritten object is served only up to where its digest is known
	// to differ: the client never gets a complete, wrong download.
	resp, err := ts.Client().Get(ts.URL + docs + "/" + altered.ID)
	if err == nil {
		got, readErr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if readErr == nil && bytes.Equal(got, forged) {
			t.Errorf("the altered document was served whole: %d %q", resp.StatusCode, got)
		}
	}
	if r := ts.get(t, docs+"/"+removed.ID); r.status != http.StatusInternalServerError {
		t.Errorf("download of the missing document: %s", r)
	}
}

// TestOversizeUploadLeavesNoChunks: an upload that passes the limit only
// after several chunks were stored leaves none of them behind.
func TestOversizeUploadLeavesNoChunks(t *testing.T) {
	b := buildServer(t, setup{maxDocument: 300 << 10}) // more than two 128 KiB chunks
	ts := b.testServer
	id := ts.create(t, agreement("IOM–WHO MOU"))
	big := append(bytes.Clone(pdfFile), bytes.Repeat([]byte("x"), 1<<20)...)
	seq, before := ts.lastSequence(t), bucketState(t, b.store)
	r := ts.upload(t, "/v1/engagements/"+id+"/documents?name=big.pdf", io.MultiReader(bytes.NewReader(big)),
		"Content-Type", "application/pdf")
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %s, want 413", r)
	}
	if got := bucketState(t, b.store); got != before || ts.lastSequence(t) != seq {
		t.Errorf("after the refusal the bucket holds %d messages (before %d), the stream is at %d (before %d)",
			got, before, ts.lastSequence(t), seq)
	}
	// Just under the limit is stored whole.
	ok := big[:300<<10]
	r = ts.upload(t, "/v1/engagements/"+id+"/documents?name=ok.pdf", bytes.NewReader(ok), "Content-Type", "application/pdf")
	if r.status != http.StatusCreated {
		t.Fatalf("upload at the limit: %s", r)
	}
	d := decode[document](t, r)
	if got := ts.get(t, d.Href); !bytes.Equal(got.body, ok) {
		t.Errorf("downloaded %d bytes, uploaded %d", len(got.body), len(ok))
	}
}
