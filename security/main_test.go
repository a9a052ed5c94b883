// Package security_test is Hushflow's adversarial test suite: the cases of
// shared/SECURITY.md, each a named test against the real server, asserting
// the safe behaviour and that no planted secret value shows anywhere.
package security_test

import (
	"testing"

	_ "github.com/hushflow/hushflow/blocks/all"
	"github.com/hushflow/hushflow/internal/apptest"
)

func TestMain(m *testing.M) { apptest.Main(m) }
