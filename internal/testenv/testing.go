package testenv

import (
	"errors"
	"os"
	"testing"
)

// SkipOrFail ends a test that cannot run because Start failed with startErr, and does nothing when startErr is
// nil. Missing binaries skip the test with the reason, unless CI=true: CI must run these tests, so there it
// fails, as it does for every other start error.
func SkipOrFail(tb testing.TB, startErr error) {
	tb.Helper()
	if startErr == nil {
		return
	}
	if errors.Is(startErr, ErrBinariesMissing) && os.Getenv("CI") != "true" {
		tb.Skipf("SKIPPED, no real control plane: %v", startErr)
	}
	tb.Fatalf("test control plane: %v", startErr)
}
