package hooks

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lifecycled/lifecycled/internal/proctest"
	"github.com/lifecycled/lifecycled/supervisor"
)

func TestMain(m *testing.M) { proctest.Main(m, &testReaper) }

// testReaper starts and reaps every child of the test binary.
var testReaper *supervisor.Reaper

// observed returns a logger whose entries the test can inspect.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return zap.New(core), logs
}
