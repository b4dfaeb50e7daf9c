package webui_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// server, projector, token watch and live stream a test starts must stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
