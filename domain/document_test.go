package domain

import (
	"strings"
	"testing"
)

// attach is engagement.document_attached data for document id.
func attach(id string, kv ...any) obj {
	return with(sampleData(EngagementDocumentAttached), append([]any{"document_id", id}, kv...)...)
}

func TestDocumentAttached(t *testing.T) {
	first, second, third := newID(), newID(), newID()
	e := stateFor(t, EngagementDocumentAttached)
	mustApply(t, e, newEvent(t, e, EngagementDocumentAttached, attach(first)))
	mustApply(t, e, newEvent(t, e, EngagementDocumentAttached, attach(second, "supersedes", first, "name", "mou-v2.pdf")))

	docs := e.Documents()
	if len(docs) != 2 || docs[0].ID != first || docs[0].SupersededBy != second || docs[1].Supersedes != first ||
		docs[1].Name != "mou-v2.pdf" || docs[1].Size != 1024 || docs[1].Actor != "test" || docs[1].EventID == "" {
		t.Fatalf("documents %+v", docs)
	}

	tests := []struct {
		name string
		data obj
		want errCheck
	}{
		{"supersede a document the engagement does not have → 422", attach(third, "supersedes", newID()), invalid("data.supersedes")},
		{"supersede a version already superseded → 422", attach(third, "supersedes", first), invalid("data.supersedes")},
		{"attach the same document id twice → 422", attach(second), invalid("data.document_id")},
		{"a path-traversal name → 422", attach(third, "name", "../../etc/passwd"), invalid("data.name")},
		{"a name with a backslash → 422", attach(third, "name", `C:\scans\mou.pdf`), invalid("data.name")},
		{"a name with .. → 422", attach(third, "name", "mou..pdf"), invalid("data.name")},
		{"a name with a control character → 422", attach(third, "name", "mou\x07.pdf"), invalid("data.name")},
		{"a name with a right-to-left override → 422", attach(third, "name", "fdp.\u202egnp"), invalid("data.name")},
		{"a name too long → 422", attach(third, "name", strings.Repeat("a", MaxFileName)+".pdf"), invalid("data.name")},
		{"a media type off the allow-list → 422", attach(third, "media_type", "text/html"), invalid("data.media_type")},
		{"a size of 0 → 422", attach(third, "size", 0), invalid("data.size")},
		{"a size as text → 400", attach(third, "size", "1024"), malformed("data.size")},
		{"a fractional size → 400", attach(third, "size", 1.5), malformed("data.size")},
		{"a digest in upper case → 422", attach(third, "sha256", strings.Repeat("AB", 32)), invalid("data.sha256")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Decide(newEvent(t, e, EngagementDocumentAttached, tc.data))
			tc.want(t, err)
		})
	}
	t.Run("supersede the current version → allowed", func(t *testing.T) {
		if _, err := e.Decide(newEvent(t, e, EngagementDocumentAttached, attach(third, "supersedes", second))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a clone does not see a later supersession", func(t *testing.T) {
		c := e.Clone()
		mustApply(t, e, newEvent(t, e, EngagementDocumentAttached, attach(third, "supersedes", second)))
		if d, _ := c.Document(second); d.SupersededBy != "" {
			t.Errorf("the clone's document changed: %+v", d)
		}
	})
}

func TestMediaTypeByName(t *testing.T) {
	for name, want := range map[string]string{"MOU.PDF": MediaPDF, "letter.docx": MediaDOCX, "scan.jpeg": MediaJPEG,
		"notes.txt": MediaText, "page.html": "", "noext": ""} {
		if got := MediaTypeByName(name); got != want {
			t.Errorf("MediaTypeByName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestContentDisposition(t *testing.T) {
	for name, want := range map[string]string{
		"mou.pdf":              `attachment; filename="mou.pdf"; filename*=UTF-8''mou.pdf`,
		"Accord été 2019.docx": `attachment; filename="Accord _t_ 2019.docx"; filename*=UTF-8''Accord%20%C3%A9t%C3%A9%202019.docx`,
		`a"b;c.pdf`:            `attachment; filename="a_b_c.pdf"; filename*=UTF-8''a%22b%3Bc.pdf`,
		"../../etc/passwd":     `attachment; filename="______etc_passwd"; filename*=UTF-8''______etc_passwd`,
		"x\r\nSet-Cookie: a=b": `attachment; filename="x__Set-Cookie_ a_b"; filename*=UTF-8''x__Set-Cookie%3A%20a%3Db`,
		"合同.pdf":               `attachment; filename="__.pdf"; filename*=UTF-8''%E5%90%88%E5%90%8C.pdf`,
		"..":                   `attachment; filename="document"; filename*=UTF-8''document`,
	} {
		if got := ContentDisposition(name); got != want {
			t.Errorf("ContentDisposition(%q)\n = %s\nwant %s", name, got, want)
		}
	}
}
