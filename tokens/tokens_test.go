package tokens_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/iom-who/engagements/domain"
	"github.com/iom-who/engagements/eventstore"
	"github.com/iom-who/engagements/tokens"
	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: the
// watch must stop at Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open starts an embedded nats-server on a temp dir and opens the token
// store on its connection; both close when the test ends.
func open(t *testing.T) (*eventstore.Store, *tokens.Store) {
	t.Helper()
	store, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	ts, err := tokens.Open(context.Background(), store, tokens.Config{})
	if err != nil {
		t.Fatalf("open tokens: %v", err)
	}
	t.Cleanup(ts.Close) // runs before the store closes
	return store, ts
}

func TestCreateAuthenticateRevoke(t *testing.T) {
	_, ts := open(t)
	ctx := context.Background()
	secret, info, err := ts.Create(ctx, "crm-sync", domain.RoleSubscriber)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, tokens.Prefix) || info.Name != "crm-sync" || info.Role != domain.RoleSubscriber {
		t.Errorf("created %q %+v", secret, info)
	}
	if got, ok := ts.Authenticate(secret); !ok || got.Name != "crm-sync" {
		t.Errorf("authenticate the new token: %+v %v", got, ok)
	}
	if _, ok := ts.Authenticate(secret + "x"); ok {
		t.Error("a token that was never made authenticates")
	}
	for _, d := range []string{tokens.Digest(secret), tokens.Digest(secret + "x"), secret, ""} {
		got, ok := ts.AuthenticateDigest(d)
		if want := d == tokens.Digest(secret); ok != want || want && got.Name != "crm-sync" {
			t.Errorf("AuthenticateDigest(%.12q…) = %+v %v, want ok %v", d, got, ok, want)
		}
	}
	if _, _, err := ts.Create(ctx, "crm-sync", domain.RoleAuditor); !errors.Is(err, domain.ErrExists) {
		t.Errorf("second token of the same name: %v, want ErrExists", err)
	}
	var ve *domain.ValidationError
	if _, _, err := ts.Create(ctx, "bi", "owner"); !errors.As(err, &ve) || ve.Fields[0].Field != "role" {
		t.Errorf("unknown role: %v, want a validation error on role", err)
	}
	if l := ts.List(); len(l) != 1 || l[0].Name != "crm-sync" || ts.Len() != 1 {
		t.Errorf("list %+v", l)
	}
	if err := ts.Revoke(ctx, "crm-sync"); err != nil {
		t.Fatal(err)
	}
	if _, ok := ts.Authenticate(secret); ok {
		t.Error("a revoked token authenticates")
	}
	if _, ok := ts.AuthenticateDigest(tokens.Digest(secret)); ok {
		t.Error("a revoked token's digest authenticates")
	}
	if err := ts.Revoke(ctx, "crm-sync"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("revoking twice: %v, want ErrNotFound", err)
	}
}

// Another instance on the same bucket starts from what is stored: its
// watch replays every token.
func TestAnotherInstanceReadsTheBucket(t *testing.T) {
	store, ts := open(t)
	secret, _, err := ts.Create(context.Background(), "auditor", domain.RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tokens.Open(context.Background(), store, tokens.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if info, ok := other.Authenticate(secret); !ok || info.Role != domain.RoleAuditor {
		t.Errorf("the other instance: %+v %v", info, ok)
	}
}
