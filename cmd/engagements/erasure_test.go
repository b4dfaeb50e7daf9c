package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/nats-io/nats.go"
)

// A subscriber on NATS gets the stored bytes: personal fields sealed, and
// no way to the keys. After an erasure and a restart without the
// checkpoint (a rebuild from the stream), the field still reads erased.
func TestRawSubscriberSeesOnlySealedPersonalData(t *testing.T) {
	dir := t.TempDir()
	start := func() *Main {
		m := &Main{Config: Config{HTTP: "127.0.0.1:0", DataDir: dir, Sync: "always", Replicas: 1,
			NATSListen: "127.0.0.1:-1", NATSAdminToken: "nats-admin-token-0123456789"}}
		if err := m.Run(context.Background()); err != nil {
			_ = m.Close()
			t.Fatalf("start: %v", err)
		}
		return m
	}
	m := start()
	t.Cleanup(func() { _ = m.Close() })
	readToken(t, dir)
	ctx := context.Background()
	sub, _, err := m.Tokens.Create(ctx, "crm", domain.RoleSubscriber)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(m.Store.ClientURL(), nats.Token(sub),
		nats.CustomInboxPrefix(eventstore.SubscriberInboxPrefix("crm")), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	live, err := nc.SubscribeSync("engagements.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	const name, email = "Ana Lopez", "ana.lopez@who.int"
	id := recordFocalPoint(t, m.URL(), name, email)
	for {
		msg, err := live.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("the subscriber saw no focal point: %v", err)
		}
		if bytes.Contains(msg.Data, []byte(name)) || bytes.Contains(msg.Data, []byte(email)) {
			t.Fatalf("a raw subscriber sees plain text: %s", msg.Data)
		}
		if bytes.Contains(msg.Data, []byte("focal_point_assigned")) {
			if !bytes.Contains(msg.Data, []byte("sealed:v1:")) {
				t.Fatalf("no sealed value: %s", msg.Data)
			}
			break
		}
	}
	// The keys' bucket is not the subscriber's to read.
	for _, subj := range []string{"$JS.API.STREAM.INFO.KV_" + eventstore.PersonKeyBucket,
		"$JS.API.DIRECT.GET.KV_" + eventstore.PersonKeyBucket + ".$KV." + eventstore.PersonKeyBucket + ".lookup"} {
		if msg, err := nc.Request(subj, nil, time.Second); err == nil && len(msg.Data) > 0 {
			t.Errorf("the subscriber read %s: %.80q", subj, msg.Data)
		}
	}

	erasePerson(t, m.URL(), email)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m.CheckpointFile()); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	m = start()
	var h struct {
		Events []domain.Event `json:"events"`
	}
	if code := getJSON(t, m.URL()+"/v1/engagements/"+id+"/history", &h); code != http.StatusOK {
		t.Fatalf("history after the rebuild: %d", code)
	}
	for _, ev := range h.Events {
		if ev.Type != domain.EngagementFocalPointAssigned {
			continue
		}
		var d domain.FocalPointAssignedData
		_ = json.Unmarshal(ev.Data, &d)
		if d.Name != domain.Erased || d.Email != domain.Erased || len(ev.Personal) != 2 || !ev.Personal[0].Erased {
			t.Errorf("after a rebuild: %s %+v", ev.Data, ev.Personal)
		}
	}
	var st struct {
		FocalPoints []domain.FocalPoint `json:"focal_points"`
	}
	if code := getJSON(t, m.URL()+"/v1/engagements/"+id, &st); code != http.StatusOK || len(st.FocalPoints) != 1 ||
		st.FocalPoints[0].Name != domain.Erased {
		t.Errorf("state after a rebuild: %d %+v", code, st)
	}
	var rep domain.Report
	if code := getJSON(t, m.URL()+"/v1/verify", &rep); code != http.StatusOK || !rep.OK {
		t.Errorf("verify after the rebuild: %d %+v", code, rep)
	}
}

// TestErasureReplacesTheCheckpoint: the checkpoint saved before an erasure
// holds the person's data in plain text (the folded state); serve replaces
// it soon after folding the erasure, not at its usual 100k events or
// 10 min.
func TestErasureReplacesTheCheckpoint(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, false)
	const email = "bea.okafor@who.int"
	recordFocalPoint(t, m.URL(), "Bea Okafor", email)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	holds := func() bool {
		b, err := os.ReadFile(m.CheckpointFile())
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(b, []byte(email))
	}
	if !holds() {
		t.Fatal("the checkpoint saved at shutdown does not hold the focal point's e-mail: nothing to test")
	}

	m = startMain(t, dir, false)
	defer m.Close()
	erasePerson(t, m.URL(), email)
	deadline := time.Now().Add(30 * time.Second)
	for holds() {
		if time.Now().After(deadline) {
			t.Fatal("30 s after the erasure the checkpoint still holds the erased e-mail")
		}
		time.Sleep(50 * time.Millisecond) // polls the file, a real condition
	}
}

// recordFocalPoint records an agreement with a focal point for WHO and
// returns the engagement's id.
func recordFocalPoint(t *testing.T, base, name, email string) string {
	t.Helper()
	code, body := postJSON(t, base+"/v1/engagements", `{"kind":"agreement","title":"MOU","parties":["IOM","WHO"]}`)
	if code != http.StatusCreated {
		t.Fatalf("record: %d %v", code, body)
	}
	id := body["id"].(string)
	if code, body := postJSON(t, base+"/v1/engagements/"+id+"/events",
		`{"type":"engagement.focal_point_assigned","data":{"party":"WHO","name":"`+name+`","email":"`+email+`"}}`); code != http.StatusCreated {
		t.Fatalf("focal point: %d %v", code, body)
	}
	return id
}

// erasePerson finds the person with email and erases them.
func erasePerson(t *testing.T, base, email string) {
	t.Helper()
	var found domain.Person
	if code := getJSON(t, base+"/v1/people?email="+email, &found); code != http.StatusOK {
		t.Fatalf("find: %d", code)
	}
	if code, body := postJSON(t, base+"/v1/people/"+found.ID+"/erase", ""); code != http.StatusOK {
		t.Fatalf("erase: %d %v", code, body)
	}
}
