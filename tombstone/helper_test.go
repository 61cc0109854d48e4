package tombstone

import (
	"context"
	"os"
	"testing"

	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/supervisor"
)

func TestMain(m *testing.M) {
	// The lock holders the tests start go through one reaper, as in
	// lifecycled: it is the process's only waiter, so no os/exec wait
	// races it for a status.
	testReaper = supervisor.NewReaper(zap.NewNop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = testReaper.Run(ctx) }()
	code := m.Run()
	cancel()
	os.Exit(code)
}

// testReaper starts and reaps every child of the test binary.
var testReaper *supervisor.Reaper
