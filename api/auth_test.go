package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iom-who/engagements/api"
	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/tokens"
)

// authServer is the API with tokens and roles on, as serve runs it.
type authServer struct {
	*testServer
	tokens *tokens.Store
	admin  string
}

func newAuthServer(t *testing.T, perSecond float64, burst int) *authServer {
	t.Helper()
	b := buildServer(t, setup{tokens: true, options: []api.Option{api.WithRateLimit(perSecond, burst)}})
	return &authServer{testServer: b.testServer, tokens: b.tokens, admin: b.admin}
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// mint creates a token through the API, as an admin would.
func (as *authServer) mint(t *testing.T, name string, role domain.Role) string {
	t.Helper()
	r := as.post(t, "/v1/tokens", `{"name":"`+name+`","role":"`+string(role)+`"}`, bearer(as.admin)...)
	if r.status != http.StatusCreated {
		t.Fatalf("create token %s: %s", name, r)
	}
	created := decode[struct {
		Name, Role, Token string
		CreatedAt         time.Time `json:"created_at"`
	}](t, r)
	if created.Name != name || created.Role != string(role) || !strings.HasPrefix(created.Token, "eng_") || len(created.Token) < 4+43 {
		t.Fatalf("created token = %+v", created)
	}
	return created.Token
}

func TestRolesAndTokens(t *testing.T) {
	as := newAuthServer(t, 0, 1)
	coordinator := as.mint(t, "maria", domain.RoleCoordinator)
	auditor := as.mint(t, "audit-office", domain.RoleAuditor)
	subscriber := as.mint(t, "crm-sync", domain.RoleSubscriber)

	r := as.post(t, "/v1/engagements", `{"kind":"agreement","title":"MOU","parties":["IOM","WHO"]}`, bearer(coordinator)...)
	if r.status != http.StatusCreated {
		t.Fatalf("coordinator create: %s", r)
	}
	id := decode[struct{ ID string }](t, r).ID
	engagement := "/v1/engagements/" + id
	note := `{"type":"engagement.noted","data":{"note":"n"}}`

	tests := []struct {
		name         string
		method, path string
		body         string
		header       []string
		status       int
	}{
		{"no token → 401", "GET", engagement, "", nil, 401},
		{"not a bearer token → 401", "GET", engagement, "", []string{"Authorization", "Basic YWRtaW46YWRtaW4="}, 401},
		{"unknown token → 401", "GET", engagement, "", bearer("eng_not-a-real-token"), 401},
		{"empty bearer → 401", "GET", engagement, "", []string{"Authorization", "Bearer "}, 401},
		{"coordinator reads state", "GET", engagement, "", bearer(coordinator), 200},
		{"coordinator reads history", "GET", engagement + "/history", "", bearer(coordinator), 200},
		{"coordinator writes", "POST", engagement + "/events", note, bearer(coordinator), 201},
		{"coordinator may not read the global log → 403", "GET", "/v1/events", "", bearer(coordinator), 403},
		{"coordinator may not verify → 403", "GET", "/v1/verify", "", bearer(coordinator), 403},
		{"coordinator may not mint tokens → 403", "POST", "/v1/tokens", `{"name":"x","role":"admin"}`, bearer(coordinator), 403},
		{"auditor reads state", "GET", engagement, "", bearer(auditor), 200},
		{"auditor reads as of a date", "GET", "/v1/engagements?as_of=2018-01-01", "", bearer(auditor), 200},
		{"auditor reads the log", "GET", "/v1/events", "", bearer(auditor), 200},
		{"auditor exports", "GET", "/v1/events/export?format=csv", "", bearer(auditor), 200},
		{"auditor verifies", "GET", "/v1/verify", "", bearer(auditor), 200},
		{"auditor cannot write → 403", "POST", engagement + "/events", note, bearer(auditor), 403},
		{"auditor cannot create → 403", "POST", "/v1/engagements", `{"kind":"meeting","title":"x","parties":["IOM"]}`, bearer(auditor), 403},
		{"auditor cannot list tokens → 403", "GET", "/v1/tokens", "", bearer(auditor), 403},
		{"subscriber cannot read state → 403", "GET", engagement, "", bearer(subscriber), 403},
		{"subscriber cannot write → 403", "POST", engagement + "/events", note, bearer(subscriber), 403},
		{"admin does everything", "GET", "/v1/events", "", bearer(as.admin), 200},
		{"healthz is open", "GET", "/healthz", "", nil, 200},
		{"readyz is open", "GET", "/readyz", "", nil, 200},
		{"duplicate token name → 409", "POST", "/v1/tokens", `{"name":"maria","role":"auditor"}`, bearer(as.admin), 409},
		{"unknown role → 422", "POST", "/v1/tokens", `{"name":"x","role":"superuser"}`, bearer(as.admin), 422},
		{"bad token name → 422", "POST", "/v1/tokens", `{"name":"a b.c","role":"auditor"}`, bearer(as.admin), 422},
		{"missing role → 422", "POST", "/v1/tokens", `{"name":"x"}`, bearer(as.admin), 422},
		{"unknown field → 400", "POST", "/v1/tokens", `{"name":"x","role":"auditor","token":"mine"}`, bearer(as.admin), 400},
		{"revoke unknown → 404", "DELETE", "/v1/tokens/nobody", "", bearer(as.admin), 404},
		{"revoke the last admin → 409", "DELETE", "/v1/tokens/admin", "", bearer(as.admin), 409},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := as.request(t, tt.method, tt.path, tt.body, tt.header...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status >= 400 && !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("content type %q", r.header.Get("Content-Type"))
			}
			if tt.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	// The token's name is the actor; X-Actor cannot override it.
	r = as.post(t, engagement+"/events", note, append(bearer(coordinator), "X-Actor", "someone-else")...)
	if r.status != http.StatusCreated {
		t.Fatal(r)
	}
	h := decode[struct{ Events []domain.Event }](t, as.get(t, engagement+"/history", bearer(auditor)...))
	for _, ev := range h.Events {
		if ev.Actor != "maria" {
			t.Errorf("actor %q, want the token's name maria", ev.Actor)
		}
	}

	// The list shows names, roles and times, never secrets or hashes.
	r = as.get(t, "/v1/tokens", bearer(as.admin)...)
	if r.status != 200 || strings.Contains(string(r.body), coordinator) || strings.Contains(string(r.body), "sha256") {
		t.Errorf("token list: %s", r)
	}
	for _, name := range []string{"admin", "audit-office", "crm-sync", "maria"} {
		if !strings.Contains(string(r.body), `"name":"`+name+`"`) {
			t.Errorf("token list lacks %s: %s", name, r.body)
		}
	}

	// Revoking stops the token at once.
	if r := as.request(t, "DELETE", "/v1/tokens/maria", "", bearer(as.admin)...); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %s", r)
	}
	if r := as.get(t, engagement, bearer(coordinator)...); r.status != http.StatusUnauthorized {
		t.Errorf("revoked token: %s", r)
	}
}

func TestRevocationReachesOtherInstances(t *testing.T) {
	as := newAuthServer(t, 0, 1)
	token := as.mint(t, "temp", domain.RoleAuditor)
	// A second instance's view of the same bucket.
	other, err := tokens.Open(context.Background(), as.store, tokens.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, ok := other.Authenticate(token); !ok {
		t.Fatal("the other instance does not know the token")
	}
	if err := as.tokens.Revoke(context.Background(), "temp"); err != nil {
		t.Fatal(err)
	}
	// The watch delivers the deletion; wait for it by polling (bounded).
	for i := 0; ; i++ {
		if _, ok := other.Authenticate(token); !ok {
			break
		}
		if i == 500 {
			t.Fatal("the other instance still accepts a revoked token")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRateLimitPerToken(t *testing.T) {
	as := newAuthServer(t, 1, 3)
	other := as.mint(t, "other", domain.RoleAuditor) // the admin's first request used one of its burst
	var limited response
	for i := 0; i < 5; i++ {
		if r := as.get(t, "/v1/events", bearer(as.admin)...); r.status == http.StatusTooManyRequests {
			limited = r
			break
		}
	}
	if limited.status != http.StatusTooManyRequests || limited.header.Get("Retry-After") == "" {
		t.Fatalf("no 429 with Retry-After after the burst: %v", limited)
	}
	if r := as.get(t, "/v1/events", bearer(other)...); r.status != http.StatusOK {
		t.Errorf("another token is limited too: %s", r)
	}
}

func TestIdempotencyKeysBelongToTheirToken(t *testing.T) {
	as := newAuthServer(t, 0, 1)
	maria := as.mint(t, "maria", domain.RoleCoordinator)
	ahmed := as.mint(t, "ahmed", domain.RoleCoordinator)
	body := `{"kind":"meeting","title":"HLM","parties":["IOM"]}`
	first := as.post(t, "/v1/engagements", body, append(bearer(maria), "Idempotency-Key", "k-1")...)
	again := as.post(t, "/v1/engagements", body, append(bearer(maria), "Idempotency-Key", "k-1")...)
	other := as.post(t, "/v1/engagements", body, append(bearer(ahmed), "Idempotency-Key", "k-1")...)
	id := func(r response) string { return decode[struct{ ID string }](t, r).ID }
	if first.status != 201 || again.status != 201 || other.status != 201 {
		t.Fatalf("statuses %d %d %d", first.status, again.status, other.status)
	}
	if id(first) != id(again) {
		t.Error("the same token's retry recorded a second engagement")
	}
	if id(first) == id(other) {
		t.Error("another token's request with the same key got the first token's answer")
	}
}
