package api_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/proofs"
	"github.com/nats-io/nats.go"
)

func TestCheckpointsAndProofs(t *testing.T) {
	b := buildServer(t, setup{tokens: true, proofs: true})
	as := &authServer{testServer: b.testServer, tokens: b.tokens, admin: b.admin}
	coord := bearer(as.mint(t, "carla", domain.RoleCoordinator))
	aud := bearer(as.mint(t, "aude", domain.RoleAuditor))
	sub := bearer(as.mint(t, "sam", domain.RoleSubscriber))

	mou := as.create(t, agreement("MOU"), coord...)
	other := as.create(t, agreement("Other"), coord...)
	as.appendEvent(t, mou, note("first"), coord...)
	as.appendEvent(t, other, note("elsewhere"), coord...)
	as.appendEvent(t, mou, note("second"), coord...)

	for _, tt := range []struct {
		name   string
		method string
		path   string
		header []string
		status int
	}{
		{"a coordinator signs a checkpoint → 403", "POST", "/v1/checkpoints", coord, http.StatusForbidden},
		{"a subscriber signs a checkpoint → 403", "POST", "/v1/checkpoints", sub, http.StatusForbidden},
		{"without a token → 401", "POST", "/v1/checkpoints", nil, http.StatusUnauthorized},
		{"a proof before any checkpoint → 404", "GET", "/v1/engagements/" + mou + "/proof", aud, http.StatusNotFound},
		{"an auditor signs one", "POST", "/v1/checkpoints", aud, http.StatusCreated},
		{"an admin asks again with nothing new → 200", "POST", "/v1/checkpoints", bearer(as.admin), http.StatusOK},
		{"a subscriber asks for a proof → 403", "GET", "/v1/engagements/" + mou + "/proof", sub, http.StatusForbidden},
		{"a proof of an unknown engagement → 404", "GET", "/v1/engagements/" + newID() + "/proof", aud, http.StatusNotFound},
		{"a proof of an id that is no id → 400", "GET", "/v1/engagements/not-an-id/proof", aud, http.StatusBadRequest},
		{"a proof against checkpoint x → 400", "GET", "/v1/engagements/" + mou + "/proof?checkpoint=x", aud, http.StatusBadRequest},
		{"a proof against a sequence with no checkpoint → 404", "GET", "/v1/engagements/" + mou + "/proof?checkpoint=3", aud, http.StatusNotFound},
		{"a coordinator lists checkpoints", "GET", "/v1/checkpoints", coord, http.StatusOK},
		{"a subscriber lists checkpoints → 403", "GET", "/v1/checkpoints", sub, http.StatusForbidden},
		{"limit 0 → 400", "GET", "/v1/checkpoints?limit=0", aud, http.StatusBadRequest},
		{"a subscriber reads the keys", "GET", "/v1/keys", sub, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := as.request(t, tt.method, tt.path, "", tt.header...)
			if r.status != tt.status {
				t.Errorf("%s %s: %s; want %d", tt.method, tt.path, r, tt.status)
			}
			if r.status >= 400 && mediaType(r.header) != "application/problem+json" {
				t.Errorf("error as %s", mediaType(r.header))
			}
		})
	}

	// The key as GET /v1/keys lists it, in each of its forms.
	ks := decode[struct {
		Keys []struct {
			proofs.Key
			Current bool   `json:"current"`
			PEM     string `json:"pem"`
		} `json:"keys"`
	}](t, as.get(t, "/v1/keys", aud...))
	if len(ks.Keys) != 1 || !ks.Keys[0].Current || ks.Keys[0].KeyID != proofs.KeyID(b.key.Public().(ed25519.PublicKey)) {
		t.Fatalf("keys %+v", ks)
	}
	pemKey, err := proofs.ParsePublicKey([]byte(ks.Keys[0].PEM))
	if err != nil || !pemKey.Equal(b.key.Public()) {
		t.Fatalf("the PEM key: %v", err)
	}
	list := decode[struct {
		Items []struct {
			Number int `json:"number"`
			proofs.Checkpoint
		} `json:"items"`
		NextAfter int `json:"next_after"`
	}](t, as.get(t, "/v1/checkpoints?limit=1", aud...))
	if len(list.Items) != 1 || list.Items[0].Number != 1 || list.NextAfter != 1 || list.Items[0].Sequence != 5 {
		t.Fatalf("checkpoints %+v", list)
	}
	if next := as.get(t, "/v1/checkpoints?after=1", aud...); !bytes.Contains(next.body, []byte(`"items":[]`)) {
		t.Errorf("the page after the last: %s", next)
	}

	r := as.get(t, "/v1/engagements/"+mou+"/proof", coord...)
	if r.status != http.StatusOK {
		t.Fatalf("proof: %s", r)
	}
	res, err := proofs.VerifyProof(r.body, []ed25519.PublicKey{pemKey})
	if err != nil || res.Events != 3 || res.Sequence != 5 {
		t.Fatalf("the proof served: %+v %v", res, err)
	}
	var f proofs.File
	if err := json.Unmarshal(r.body, &f); err != nil {
		t.Fatal(err)
	}
	for _, e := range f.Events {
		payload, _ := base64.StdEncoding.DecodeString(e.Payload)
		m, err := b.store.Message(t.Context(), e.Sequence)
		if err != nil || !bytes.Equal(m.Payload, payload) || m.Subject != e.Subject || m.Hash != e.Hash || m.PrevHash != e.PrevHash {
			t.Errorf("event %d is not as stored", e.Sequence)
		}
		if strings.Contains(e.Subject, other) || bytes.Contains(payload, []byte(other)) {
			t.Errorf("the proof of %s shows %s", mou, other)
		}
	}
	if !strings.Contains(r.header.Get("Content-Disposition"), "proof-"+mou+".json") {
		t.Errorf("Content-Disposition %q", r.header.Get("Content-Disposition"))
	}

	rep := decode[domain.Report](t, as.get(t, "/v1/verify", aud...))
	if !rep.OK || rep.Checkpoints == nil || rep.Checkpoints.Valid != 1 || rep.Checkpoints.LatestSequence != 5 {
		t.Fatalf("verify: %+v %+v", rep, rep.Checkpoints)
	}

	// Tampering behind the service's back shows in verify: a message
	// published straight to the stream, and a checkpoint whose signature
	// is not the key's.
	msg := nats.NewMsg(eventstore.IntakeSubject("engagements.agreement." + mou + ".noted"))
	msg.Data = []byte(`{"not":"a cloudevent"}`)
	if _, err := b.store.JetStream().PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	bad := f.Checkpoint
	bad.Signature = base64.StdEncoding.EncodeToString(make([]byte, ed25519.SignatureSize))
	data, _ := json.Marshal(bad)
	if _, err := b.ledger.AppendCheckpoint(t.Context(), data); err != nil {
		t.Fatal(err)
	}
	rep = decode[domain.Report](t, as.get(t, "/v1/verify", aud...))
	var texts []string
	for _, p := range rep.Problems {
		texts = append(texts, p.Problem)
	}
	all := strings.Join(texts, "\n")
	if rep.OK || !strings.Contains(all, "undecodable event at sequence 6") || !strings.Contains(all, "checkpoint 2 (sequence 5): checkpoint fails its check: the signature does not match") {
		t.Errorf("verify after tampering: %q", texts)
	}
	if rep.Checkpoints.Checked != 2 || rep.Checkpoints.Valid != 1 {
		t.Errorf("checkpoints after tampering: %+v", rep.Checkpoints)
	}
}
