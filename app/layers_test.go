package app_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The command path knows no transport, and the two ports that use it do
// not know each other: what the package docs of app and webui promise;
// the importer knows only the domain and HTTP, as its doc says.
func TestLayers(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to list dependencies with")
	}
	for _, tc := range []struct {
		pkg       string
		forbidden []string
	}{
		{"github.com/iom-who/engagements/app", []string{"net/http", "github.com/labstack/echo/v4",
			"github.com/iom-who/engagements/api", "github.com/iom-who/engagements/webui"}},
		{"github.com/iom-who/engagements/webui", []string{"github.com/iom-who/engagements/api"}},
		{"github.com/iom-who/engagements/api", []string{"github.com/iom-who/engagements/webui",
			"github.com/xuri/excelize/v2"}},
		// Directory sign-in knows the provider and the roles only; the
		// test provider (zitadel's OP) is never built into the binary.
		{"github.com/iom-who/engagements/openid", []string{"github.com/iom-who/engagements/eventstore",
			"github.com/iom-who/engagements/sessions", "github.com/iom-who/engagements/webui",
			"github.com/iom-who/engagements/app", "github.com/zitadel/oidc/v3/pkg/op"}},
		{"github.com/iom-who/engagements/cmd/engagements", []string{"github.com/zitadel/oidc/v3/pkg/op",
			"github.com/iom-who/engagements/openid/openidtest"}},
		// The importer is a client of the service: the rules, and HTTP.
		{"github.com/iom-who/engagements/importer", []string{"github.com/iom-who/engagements/app",
			"github.com/iom-who/engagements/api", "github.com/iom-who/engagements/eventstore",
			"github.com/iom-who/engagements/projections", "github.com/iom-who/engagements/webui"}},
	} {
		out, err := exec.Command(goTool, "list", "-deps", tc.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tc.pkg, err)
		}
		deps := strings.Fields(string(out))
		for _, f := range tc.forbidden {
			if slices.Contains(deps, f) {
				t.Errorf("%s imports %s", tc.pkg, f)
			}
		}
	}
}
