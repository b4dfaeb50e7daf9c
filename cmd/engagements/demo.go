package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/iom-who/engagements/app"
	"github.com/iom-who/engagements/domain"
)

// The demo data: the IOM–WHO engagements of ../shared/seed, with the dates
// the public record gives, as precisely as it gives them: "1999" and
// "2019-01" are recorded with year and month precision. Where the seed gives
// no date at all, the event is recorded when the demo is loaded with time
// precision none, which pages show as "date not recorded".

type demoEvent struct {
	typ  domain.EventType
	on   string // YYYY-MM-DD, YYYY-MM or YYYY; empty: not recorded
	data map[string]any
	link string // key of the engagement a linked event points at
}

type demoEngagement struct {
	key    string
	on     string
	data   map[string]any
	events []demoEvent
}

var iomWHO = []string{"IOM", "WHO"}

func note(on, text string) demoEvent {
	return demoEvent{typ: domain.EngagementNoted, on: on, data: map[string]any{"note": text}}
}

const contributed = "Collaborated closely with WHO, at the request of WHO Member States, in developing it."

func policy(key, title, instrument, on, description string, events ...demoEvent) demoEngagement {
	return demoEngagement{key: key, on: on, data: map[string]any{
		"kind": "policy", "title": title, "parties": iomWHO, "instrument": instrument,
		"description": description, "tags": []string{"health", "migration"},
	}, events: events}
}

func initiative(title string, parties []string) demoEngagement {
	return demoEngagement{key: title, data: map[string]any{
		"kind": "initiative", "title": title, "parties": parties, "tags": []string{"initiative"},
	}, events: []demoEvent{
		{typ: domain.InitiativeJoined, data: map[string]any{"role": "member"}},
	}}
}

func meeting(title, on, level, location string, events ...demoEvent) demoEngagement {
	data := map[string]any{"kind": "meeting", "title": title, "parties": iomWHO, "level": level, "tags": []string{"meeting"}}
	if location != "" {
		data["location"] = location
	}
	if len(events) == 0 {
		events = []demoEvent{
			{typ: domain.MeetingScheduled, on: on, data: map[string]any{"starts_on": on}},
			{typ: domain.MeetingAttended, on: on, data: map[string]any{"role": "participant"}},
		}
	}
	return demoEngagement{key: title, on: on, data: data, events: events}
}

func demoData(today string) []demoEngagement {
	return []demoEngagement{
		{key: "mou", on: "1999", data: map[string]any{
			"kind": "agreement", "title": "IOM–WHO Memorandum of Understanding", "parties": iomWHO,
			"description": "The formal MOU under which IOM and WHO have collaborated since 1999.",
			"tags":        []string{"mou", "health", "migration"},
		}, events: []demoEvent{
			{typ: domain.AgreementSigned, on: "1999", data: map[string]any{"signed_on": "1999"}},
			{typ: domain.AgreementRenewed, on: "2019-01", data: map[string]any{"renewed_on": "2019-01"}},
			{typ: domain.EngagementFocalPointAssigned, data: map[string]any{"party": "WHO",
				"name": "Department of Health and Migration", "role": "WHO counterpart (example)"}},
			{typ: domain.EngagementActionAssigned, on: today, data: map[string]any{"action_id": "mou-review",
				"title": "Review the MOU's implementation with WHO (example)", "owner": "IOM Migration Health Division",
				"due_on": dayAfter(today, 45)}},
		}},
		policy("wha", "WHA70.15: Promoting the health of refugees and migrants", "resolution", "2017-05",
			"World Health Assembly resolution WHA70.15.",
			demoEvent{typ: domain.PolicyContributed, on: "2017-05", data: map[string]any{"contribution": contributed, "role": "contributor"}},
			demoEvent{typ: domain.PolicyAdopted, on: "2017-05", data: map[string]any{"adopted_by": "WHA"}},
		),
		policy("framework", "Framework of priorities and guiding principles to promote the health of refugees and migrants",
			"framework", "2017-05", "WHO framework, cross-referenced by the GCM and the GCR.",
			demoEvent{typ: domain.PolicyContributed, on: "2017-05", data: map[string]any{"contribution": contributed, "role": "contributor"}},
			demoEvent{typ: domain.PolicyAdopted, on: "2017-05", data: map[string]any{"adopted_by": "WHA"}},
		),
		policy("report", "Situation analysis and practices in addressing the health needs of refugees and migrants",
			"report", "2017-05", "Reports prepared for the WHO governing body process on the health of refugees and migrants.",
			demoEvent{typ: domain.PolicyContributed, on: "2017-05", data: map[string]any{
				"contribution": "Contributed to the reports on situation analysis and practices.", "role": "contributor"}},
			note("2017-05", "The seed text gives no date for this contribution; it fed the process that led to WHA70 (May 2017)."),
		),
		policy("gcm", "Global Compact for Safe, Orderly and Regular Migration (GCM)", "compact", "2018-12",
			"Explicitly mentions the WHO Framework in its health-related actions and commitments.",
			demoEvent{typ: domain.PolicyAdopted, on: "2018-12", data: map[string]any{"adopted_by": "UN Member States"}},
			demoEvent{typ: domain.EngagementLinked, on: "2018-12", link: "framework", data: map[string]any{"relation": "references"}},
		),
		policy("gcr", "Global Compact on Refugees (GCR)", "compact", "2018-12",
			"Explicitly mentions the WHO Framework in its health-related actions and commitments.",
			demoEvent{typ: domain.PolicyAdopted, on: "2018-12", data: map[string]any{"adopted_by": "UN General Assembly (affirmed)"}},
			demoEvent{typ: domain.EngagementLinked, on: "2018-12", link: "framework", data: map[string]any{"relation": "references"}},
		),
		policy("gap", "Global Action Plan on promoting the health of refugees and migrants 2019–2023", "action_plan", "2019-05",
			"IOM engaged with WHO and Member States throughout its development and collaborates in its implementation.",
			demoEvent{typ: domain.PolicyContributed, on: "2019-05", data: map[string]any{
				"contribution": "Engaged with WHO and Member States throughout the development of the GAP.", "role": "development"}},
			demoEvent{typ: domain.PolicyAdopted, on: "2019-05", data: map[string]any{"adopted_by": "WHA"}},
			demoEvent{typ: domain.PolicyCommitted, on: "2019-05", data: map[string]any{
				"commitment": "Continue to collaborate with WHO in the implementation of the GAP."}},
			note("2019-05", "The development work preceded the adoption."),
		),
		initiative("Migration 5 Health Working Group (M5HWG)", iomWHO),
		initiative("International Platform on Health Worker Mobility", iomWHO),
		initiative("Working Group on TB and migration at The Union", []string{"IOM", "The Union"}),
		initiative("IASC Global Health Cluster (GHC)", iomWHO),
		initiative("Global Outbreak Alert and Response Network (GOARN)", iomWHO),
		meeting("WHO regional committee meetings", "", "regional", "",
			note("", "IOM participates in WHO regional committee meetings; the seed text gives no dates.")),
		meeting("UNGA High-Level Meeting on the Fight to End Tuberculosis", "2018-09-26", "high-level", "UN Headquarters, New York"),
		meeting("UNGA High-Level Meeting on the Prevention and Control of Non-communicable Diseases", "2018-09-27", "high-level", "UN Headquarters, New York"),
		meeting("UNGA High-Level Meeting on Universal Health Coverage", "2019-09-23", "high-level", "UN Headquarters, New York"),
	}
}

// loadDemo records the demo engagements through the same command path as the
// API, as actor "demo". Idempotency keys make a concurrent second loader
// (another instance starting at the same moment) store nothing twice.
func loadDemo(ctx context.Context, svc *app.Service) (int, error) {
	now := time.Now().UTC()
	ids := make(map[string]string)
	// at is when on happened and how precisely the seed knows it.
	at := func(on string) (time.Time, string, error) {
		if on == "" {
			return now, domain.PrecisionNone, nil
		}
		return domain.ParsePartialDate(on)
	}
	for i, eng := range demoData(now.Format(domain.DateLayout)) {
		occurred, precision, err := at(eng.on)
		if err != nil {
			return i, err
		}
		data, _ := json.Marshal(eng.data)
		r, err := svc.Execute(ctx, app.Command{Type: domain.EngagementRecorded, OccurredAt: occurred, TimePrecision: precision,
			Data: data, Actor: "demo", IdempotencyKey: fmt.Sprintf("demo-%d", i)})
		if err != nil {
			return i, fmt.Errorf("record %q: %w", eng.key, err)
		}
		ids[eng.key] = r.EngagementID
		for j, ev := range eng.events {
			if occurred, precision, err = at(ev.on); err != nil {
				return i, err
			}
			if ev.link != "" {
				ev.data["target_id"] = ids[ev.link]
			}
			data, _ := json.Marshal(ev.data)
			_, err := svc.Execute(ctx, app.Command{EngagementID: r.EngagementID, Type: ev.typ, OccurredAt: occurred,
				TimePrecision: precision, Data: data, Actor: "demo", IdempotencyKey: fmt.Sprintf("demo-%d-%d", i, j)})
			if err != nil {
				return i, fmt.Errorf("%s %q: %w", ev.typ, eng.key, err)
			}
		}
	}
	return len(ids), nil
}

// dayAfter is the day n days after day (both YYYY-MM-DD).
func dayAfter(day string, n int) string {
	t, err := time.Parse(domain.DateLayout, day)
	if err != nil {
		return day
	}
	return t.AddDate(0, 0, n).Format(domain.DateLayout)
}
