package tombstone

import (
	"testing"

	"github.com/lifecycled/lifecycled/internal/proctest"
	"github.com/lifecycled/lifecycled/supervisor"
)

func TestMain(m *testing.M) { proctest.Main(m, &testReaper) }

// testReaper starts and reaps every child of the test binary: the lock
// holders go through it, so no os/exec wait races it for a status.
var testReaper *supervisor.Reaper
