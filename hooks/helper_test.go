package hooks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

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

// processGone reports whether pid has exited: gone, or a zombie waiting for
// an init that may not reap (this sandbox's PID 1 is not ours).
func processGone(pid int) bool {
	if errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) STATE ...; comm may hold spaces, so look after the ')'.
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

// observed returns a logger whose entries the test can inspect.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return zap.New(core), logs
}

// within fails the test unless f returns within d; it guards tests that
// would otherwise hang on a broken hook.
func within(t *testing.T, d time.Duration, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		f()
	}()
	select {
	case <-finished:
	case <-time.After(d):
		t.Fatalf("did not return within %s", d)
	}
	return time.Since(start)
}
