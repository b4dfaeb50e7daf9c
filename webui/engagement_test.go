package webui_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/iom-who/engagements/domain"
)

func TestEngagementPage(t *testing.T) {
	te := newTestEnv(t)
	s := seed(t, te)
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))

	t.Run("timeline with both dates and the actor", func(t *testing.T) {
		p := b.get("/engagements/" + s.mou)
		if p.status != http.StatusOK {
			t.Fatalf("status %d", p.status)
		}
		mustContain(t, p, "IOM–WHO MOU", "active", "History",
			"1 Jan 1999 Recorded", "by recorder", "1 May 1999 Signed", "by someone-else", "15 Jan 2019 Renewed",
			"Signed on 1 May 1999", "Renewed on 15 Jan 2019")
		tx := text(p.body)
		if strings.Index(tx, "1 May 1999 Signed") > strings.Index(tx, "15 Jan 2019 Renewed") {
			t.Error("timeline is not oldest first")
		}
	})

	t.Run("related engagements in both directions", func(t *testing.T) {
		mustContain(t, b.get("/engagements/"+s.framework), "Linked from Global Compact for Migration references this Policy in progress")
		mustContain(t, b.get("/engagements/"+s.gcm), "Links to Framework of priorities references Policy adopted")
	})

	t.Run("only the forms the domain allows now", func(t *testing.T) {
		common := []string{"engagement.action_assigned", "engagement.amended", "engagement.focal_point_assigned",
			"engagement.linked", "engagement.noted"}
		for _, tc := range []struct {
			name string
			id   string
			want []string
		}{
			{"a draft agreement may be signed", s.unhcr, append([]string{"agreement.signed"}, common...)},
			{"an active agreement may be renewed or terminated", s.mou,
				append([]string{"agreement.renewed", "agreement.terminated"}, common...)},
			{"an adopted policy: contributions and commitments", s.framework,
				append([]string{"policy.committed", "policy.contributed"}, common...)},
			{"a policy in progress may be adopted", s.gcm,
				append([]string{"policy.adopted", "policy.contributed"}, common...)},
			{"a scheduled meeting may be attended", s.uhc, append([]string{"meeting.attended"}, common...)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				slices.Sort(tc.want)
				if got := offered(b.get("/engagements/" + tc.id).body); !slices.Equal(got, tc.want) {
					t.Errorf("forms %v, want %v", got, tc.want)
				}
			})
		}
		// A terminated agreement can no longer be amended: only links and notes.
		te.append(t, s.unhcr, domain.AgreementSigned, "2020-04-01", map[string]any{"signed_on": "2020-04-01"})
		te.append(t, s.unhcr, domain.AgreementTerminated, "2020-05-01", map[string]any{"reason": "superseded"})
		p := b.get("/engagements/" + s.unhcr)
		if got, want := offered(p.body), []string{"engagement.linked", "engagement.noted"}; !slices.Equal(got, want) {
			t.Errorf("terminated: forms %v, want %v", got, want)
		}
		mustContain(t, p, "terminated", "Reason for termination superseded")
	})

	t.Run("unknown engagement → 404 page", func(t *testing.T) {
		for _, id := range []string{"0193a1b2-0000-7000-8000-000000000000", "not-a-uuid"} {
			p := b.get("/engagements/" + id)
			if p.status != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", id, p.status)
			}
			mustContain(t, p, "Engagement not found")
		}
	})
}

func TestRecordAndSignThroughForms(t *testing.T) {
	te := newTestEnv(t)
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))

	p := b.get("/engagements/new")
	if p.status != http.StatusOK {
		t.Fatalf("new page: %d", p.status)
	}
	// What is required and which fields apply to which kind, as the domain says.
	for _, want := range []string{`for="record-title">Title <span class="req">(required)`,
		`for="record-parties">Parties <span class="req">(required)`, `data-kinds="policy"`, `data-kinds="meeting"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("new page lacks %s", want)
		}
	}
	p = b.submit("/engagements/new", url.Values{"kind": {"agreement"}, "title": {"IOM–UNHCR data-sharing agreement"},
		"parties": {"IOM, UNHCR"}, "tags": {"data"}, "description": {"Line one\r\nline two"}, "occurred_at": {"2020-10-01"},
		"_key": {hidden(t, p.body, "_key")}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("record: %d %s", p.status, text(p.body))
	}
	id := strings.TrimPrefix(p.location(), "/engagements/")
	if domain.CheckID(id) != nil {
		t.Fatalf("redirect to %q", p.location())
	}
	p = b.get(p.location())
	mustContain(t, p, "IOM–UNHCR data-sharing agreement", "draft", "Recorded. Add what has happened", "IOM · UNHCR",
		"1 Oct 2020 Recorded", "by maria")
	h := te.history(t, id)
	var data struct {
		Parties     []string `json:"parties"`
		Description string   `json:"description"`
	}
	if err := json.Unmarshal(h[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if h[0].Actor != "maria" || !slices.Equal(data.Parties, []string{"IOM", "UNHCR"}) || data.Description != "Line one\nline two" {
		t.Errorf("stored %s by %s", h[0].Data, h[0].Actor)
	}

	p = b.submit("/engagements/"+id+"/events", url.Values{"type": {"agreement.signed"}, "version": {hidden(t, p.body, "version")},
		"signed_on": {"2020-11-02"}, "expires_on": {"2031-11-01"}, "occurred_at": {"2020-11-02"}})
	if p.status != http.StatusSeeOther || p.location() != "/engagements/"+id {
		t.Fatalf("sign: %d to %q: %s", p.status, p.location(), text(p.body))
	}
	p = b.get(p.location())
	mustContain(t, p, "active", "Saved: signed.", "Signed on 2 Nov 2020", "Expires on 1 Nov 2031", "2 Nov 2020 Signed")
	if h := te.history(t, id); len(h) != 2 || h[1].Type != domain.AgreementSigned || h[1].Actor != "maria" {
		t.Errorf("history after signing: %d events", len(h))
	}
	if got := offered(p.body); !slices.Contains(got, "agreement.renewed") || slices.Contains(got, "agreement.signed") {
		t.Errorf("forms after signing: %v", got)
	}
}

func TestDomainMessagesOnForms(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "MOU", "parties": []string{"IOM", "WHO"}})
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))

	t.Run("a new engagement without title or parties", func(t *testing.T) {
		b.get("/engagements/new")
		p := b.submit("/engagements/new", url.Values{"kind": {"policy"}, "title": {"  "}, "instrument": {""}})
		if p.status != http.StatusUnprocessableEntity {
			t.Fatalf("status %d, want 422", p.status)
		}
		mustContain(t, p, "Not saved", "Title: is required", "Parties: is required")
		for _, id := range []string{"record-title-error", "record-parties-error"} {
			if !strings.Contains(p.body, `id="`+id+`"`) {
				t.Errorf("no message next to the field (%s)", id)
			}
		}
		if !strings.Contains(p.body, `<option value="policy" selected>`) {
			t.Error("the chosen kind was not kept")
		}
	})

	t.Run("a policy without its instrument", func(t *testing.T) {
		b.get("/engagements/new")
		p := b.submit("/engagements/new", url.Values{"kind": {"policy"}, "title": {"X"}, "parties": {"IOM"}})
		mustContain(t, p, "Instrument: is required for policy engagements")
	})

	t.Run("a level on an agreement", func(t *testing.T) {
		b.get("/engagements/new")
		p := b.submit("/engagements/new", url.Values{"kind": {"agreement"}, "title": {"X"}, "parties": {"IOM"}, "level": {"high"}})
		mustContain(t, p, "Level: applies only to meeting engagements")
	})

	t.Run("an expiry before the signing", func(t *testing.T) {
		b.get("/engagements/" + id)
		p := b.submit("/engagements/"+id+"/events", url.Values{"type": {"agreement.signed"}, "version": {"1"},
			"signed_on": {"2020-05-01"}, "expires_on": {"2020-04-01"}})
		if p.status != http.StatusUnprocessableEntity {
			t.Fatalf("status %d, want 422", p.status)
		}
		mustContain(t, p, "Expires on: must be after signed_on 2020-05-01")
		if !strings.Contains(p.body, `id="form-agreement-signed" open`) || !strings.Contains(p.body, `value="2020-04-01"`) {
			t.Error("the form was not shown open with what was typed")
		}
	})

	t.Run("an event in the future", func(t *testing.T) {
		b.get("/engagements/" + id)
		p := b.submit("/engagements/"+id+"/events", url.Values{"type": {"engagement.noted"}, "version": {"1"},
			"note": {"later"}, "occurred_at": {"2199-01-01"}})
		mustContain(t, p, "must not be in the future")
	})

	t.Run("a correction that changes nothing", func(t *testing.T) {
		p := b.get("/engagements/" + id)
		rec := te.history(t, id)[0].ID
		p = b.submit("/engagements/"+id+"/events", url.Values{"type": {"engagement.corrected"}, "version": {"1"},
			"corrects": {rec}, "correction_reason": {"typo"}, "title": {"MOU"}})
		if p.status != http.StatusUnprocessableEntity {
			t.Fatalf("status %d, want 422", p.status)
		}
		mustContain(t, p, "must hold at least one corrected field of engagement.recorded")
	})

	t.Run("an event of another kind", func(t *testing.T) {
		b.get("/engagements/" + id)
		p := b.submit("/engagements/"+id+"/events", url.Values{"type": {"meeting.scheduled"}, "version": {"1"},
			"starts_on": {"2020-05-01"}})
		if p.status != http.StatusUnprocessableEntity {
			t.Fatalf("status %d, want 422", p.status)
		}
		mustContain(t, p, "Not saved", "meeting.scheduled events apply only to meeting engagements")
	})

	if n := len(te.history(t, id)); n != 1 || te.proj.Count() != 1 {
		t.Errorf("refused forms stored something: %d events, %d engagements", n, te.proj.Count())
	}
}

func TestStaleVersion(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "MOU", "parties": []string{"IOM", "WHO"}})
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	page := b.get("/engagements/" + id)
	seen := hidden(t, page.body, "version")

	// Meanwhile someone else signs it.
	te.append(t, id, domain.AgreementSigned, "2020-02-01", map[string]any{"signed_on": "2020-02-01"})

	t.Run("an event no longer possible", func(t *testing.T) {
		p := b.submit("/engagements/"+id+"/events", url.Values{"type": {"agreement.signed"}, "version": {seen},
			"signed_on": {"2020-03-01"}})
		if p.status != http.StatusConflict {
			t.Fatalf("status %d, want 409", p.status)
		}
		mustContain(t, p, "Someone changed this engagement meanwhile", "not saved",
			"someone-else recorded Signed (1 Feb 2020)", "no longer possible", "active")
		if slices.Contains(offered(p.body), "agreement.signed") {
			t.Error("the signing form is offered for an active agreement")
		}
	})

	t.Run("an event still possible keeps what was typed", func(t *testing.T) {
		p := b.submit("/engagements/"+id+"/events", url.Values{"type": {"engagement.noted"}, "version": {seen},
			"note": {"Checked the annex"}})
		if p.status != http.StatusConflict {
			t.Fatalf("status %d, want 409", p.status)
		}
		mustContain(t, p, "Someone changed this engagement meanwhile", "Your values are still in the form")
		if !regexp.MustCompile(`<textarea id="form-engagement-noted-note" name="note"[^>]*>Checked the annex</textarea>`).MatchString(p.body) {
			t.Error("the note typed is not in the form")
		}
		// Saving again now, with the version the conflict page carries, works.
		p = b.submit("/engagements/"+id+"/events", url.Values{"type": {"engagement.noted"}, "version": {hidden(t, p.body, "version")},
			"note": {"Checked the annex"}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("save again: %d", p.status)
		}
	})

	h := te.history(t, id)
	if len(h) != 3 || h[1].Type != domain.AgreementSigned || h[1].Actor != "someone-else" || h[2].Type != domain.EngagementNoted {
		t.Errorf("history: %d events", len(h))
	}
}

func TestDoubleSubmitRecordsOnce(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "2020-01-01", map[string]any{"kind": "agreement", "title": "MOU", "parties": []string{"IOM", "WHO"}})
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	p := b.get("/engagements/" + id)
	form := url.Values{"type": {"engagement.noted"}, "version": {"1"}, "note": {"once"}, "_key": {hidden(t, p.body, "_key")},
		"_csrf": {hidden(t, p.body, "_csrf")}}
	for i := 0; i < 2; i++ {
		if p := b.post("/engagements/"+id+"/events", form); p.status != http.StatusSeeOther {
			t.Fatalf("submit %d: %d %s", i+1, p.status, text(p.body))
		}
	}
	if n := len(te.history(t, id)); n != 2 {
		t.Errorf("%d events after a double submit, want 2", n)
	}
}

func TestCorrectionThroughForm(t *testing.T) {
	te := newTestEnv(t)
	id := te.record(t, "1999-01-01", map[string]any{"kind": "agreement", "title": "MOU", "parties": []string{"IOM", "WHO"}})
	te.append(t, id, domain.AgreementSigned, "1999-05-01", map[string]any{"signed_on": "1999-05-01"})
	signed := te.history(t, id)[1].ID
	b := te.browser(t)
	b.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	p := b.get("/engagements/" + id)
	if !strings.Contains(p.body, `id="form-engagement-corrected-`+signed+`"`) {
		t.Fatal("no correction form on the signed entry")
	}
	// The form starts from the entry's values; only what changes is sent.
	if !strings.Contains(p.body, `id="form-engagement-corrected-`+signed+`-signed_on" name="signed_on" type="date" value="1999-05-01"`) {
		t.Error("the correction form does not start from the entry's value")
	}
	p = b.submit("/engagements/"+id+"/events", url.Values{"type": {"engagement.corrected"}, "version": {"2"},
		"corrects": {signed}, "correction_reason": {"the record says 14 May"}, "signed_on": {"1999-05-14"}, "expires_on": {""}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("correct: %d %s", p.status, text(p.body))
	}
	p = b.get(p.location())
	mustContain(t, p, "Signed on 14 May 1999", "Signed corrected", "Corrected by maria", "the record says 14 May",
		"Corrects Signed (1 May 1999)")
	h := te.history(t, id)
	var c struct {
		Corrects string            `json:"corrects"`
		Fields   map[string]string `json:"fields"`
	}
	if err := json.Unmarshal(h[2].Data, &c); err != nil {
		t.Fatal(err)
	}
	if c.Corrects != signed || len(c.Fields) != 1 || c.Fields["signed_on"] != "1999-05-14" {
		t.Errorf("correction stored as %s", h[2].Data)
	}
}
