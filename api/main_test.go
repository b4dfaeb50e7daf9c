package api_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test or benchmark leaves a goroutine
// behind: every server, projector and connection a test starts must stop in
// its cleanup.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
