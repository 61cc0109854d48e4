package hooks

import (
	"context"
	"os"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lifecycled/lifecycled/supervisor"
)

func TestMain(m *testing.M) {
	// Every process the tests start goes through one reaper, as in
	// lifecycled: it is the process's only waiter.
	testReaper = supervisor.NewReaper(zap.NewNop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = testReaper.Run(ctx) }()
	code := m.Run()
	cancel()
	os.Exit(code)
}

// testReaper starts and reaps every child of the test binary.
var testReaper *supervisor.Reaper

// observed returns a logger whose entries the test can inspect.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return zap.New(core), logs
}
