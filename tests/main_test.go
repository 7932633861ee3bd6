// Package tests holds canvasd's black-box tests: complete instances in the
// test process on real PostgreSQL, and the real Replicache client suite.
package tests

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
