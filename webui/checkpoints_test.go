package webui_test

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/proofs"
)

// TestCheckpointsPage: an auditor signs a checkpoint from the browser, sees
// its signature valid (and a forged one invalid), downloads one
// engagement's proof and the bundle, both of which check out with the
// public key alone; a coordinator gets none of it.
func TestCheckpointsPage(t *testing.T) {
	te := newTestEnv(t)
	s := seed(t, te)

	coord := te.browser(t)
	coord.mustLogin(te.token(t, "maria", domain.RoleCoordinator))
	if p := coord.get("/engagements/" + s.mou); strings.Contains(p.body, "proof.json") || strings.Contains(p.body, `href="/checkpoints"`) {
		t.Error("a coordinator is offered checkpoints or proofs")
	}
	for _, path := range []string{"/checkpoints", "/export.bundle", "/engagements/" + s.mou + "/proof.json"} {
		if p := coord.get(path); p.status != http.StatusForbidden {
			t.Errorf("coordinator GET %s: %d, want 403", path, p.status)
		}
	}

	b := te.browser(t)
	b.mustLogin(te.token(t, "audit-office", domain.RoleAuditor))
	if p := b.get("/engagements/" + s.mou + "/proof.json"); p.status != http.StatusNotFound {
		t.Errorf("a proof before any checkpoint: %d, want 404", p.status)
	}
	p := b.get("/checkpoints")
	mustContain(t, p, "0 checkpoints", "None yet", proofs.KeyID(te.key), "BEGIN PUBLIC KEY")
	if p := b.post("/checkpoints", url.Values{"_csrf": {"forged"}}); p.status != http.StatusForbidden {
		t.Errorf("POST /checkpoints with a forged CSRF token: %d, want 403", p.status)
	}
	b.get("/checkpoints")
	if p := b.submit("/checkpoints", url.Values{}); p.status != http.StatusSeeOther || p.location() != "/checkpoints" {
		t.Fatalf("POST /checkpoints: %d → %q", p.status, p.location())
	}
	p = b.get("/checkpoints")
	mustContain(t, p, "Signed checkpoint 1 at sequence", "1 checkpoint", "valid")
	if strings.Contains(p.body, "invalid") {
		t.Error("a genuine checkpoint shows as invalid")
	}

	page := b.get("/engagements/" + s.mou)
	if !strings.Contains(page.body, `href="/engagements/`+s.mou+`/proof.json"`) {
		t.Error("the engagement page offers no proof download")
	}
	proof := b.get("/engagements/" + s.mou + "/proof.json")
	if proof.status != http.StatusOK || !strings.Contains(proof.header.Get("Content-Disposition"), "proof-"+s.mou) {
		t.Fatalf("proof download: %d %q", proof.status, proof.header.Get("Content-Disposition"))
	}
	keys := []ed25519.PublicKey{te.key}
	if res, err := proofs.VerifyProof([]byte(proof.body), keys); err != nil || res.EngagementID != s.mou {
		t.Errorf("the downloaded proof: %+v %v", res, err)
	}
	bundle := b.get("/export.bundle")
	if bundle.status != http.StatusOK {
		t.Fatalf("bundle download: %d", bundle.status)
	}
	if rep, err := proofs.VerifyBundle(bufio.NewReader(strings.NewReader(bundle.body)), keys); err != nil || !rep.OK || rep.Checkpoints.Valid != 1 {
		t.Errorf("the downloaded bundle: %+v %v", rep, err)
	}

	// A checkpoint put on the ledger behind the service's back, its
	// signature not the key's, shows as invalid.
	var cp proofs.File
	if err := json.Unmarshal([]byte(proof.body), &cp); err != nil {
		t.Fatal(err)
	}
	forged := cp.Checkpoint
	forged.CreatedAt = "2030-01-01T00:00:00Z"
	data, _ := json.Marshal(forged)
	if _, err := te.ledger.AppendCheckpoint(t.Context(), data); err != nil {
		t.Fatal(err)
	}
	p = b.get("/checkpoints")
	mustContain(t, p, "2 checkpoints", "1 checkpoint does not carry a valid signature", "the signature does not match")
}
