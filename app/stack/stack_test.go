package stack_test

import (
	"testing"

	"github.com/iom-who/engagements/app/stack"
)

// The pages need a signed-in token: without a token store there is no web
// interface to start.
func TestTheWebInterfaceNeedsTokens(t *testing.T) {
	if p, err := stack.Start(stack.Config{UI: true}); err == nil {
		_ = p.Close()
		t.Fatal("started the web interface without a token store")
	}
}
