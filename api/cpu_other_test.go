//go:build !unix

package api_test

import (
	"testing"
	"time"
)

// processCPU is not measured here.
func processCPU() time.Duration { return 0 }

// reportCPU reports nothing where processCPU is not measured.
func reportCPU(*testing.B, time.Duration) {}
