package drain

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lifecycled/lifecycled/internal/proctest"
	"github.com/lifecycled/lifecycled/supervisor"
)

// helperArg makes the test binary act as a child process instead of
// running tests: the sequence tests need children whose signal handling
// and timing they control, and a real process is the point.
const helperArg = "drain-test-helper"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == helperArg {
		os.Exit(runHelper(os.Args[2], os.Args[3:]))
	}
	// Race-enabled binaries sleep a second at exit; helper children would
	// make every sequence test a second slower and blur its timings.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	proctest.Main(m, &testReaper)
}

// testReaper starts and reaps every child of the test binary.
var testReaper *supervisor.Reaper

// runHelper modes:
//
//	stamp FILE            append "stamp <unixnano>" to FILE and exit 0
//	exit-on-term FILE     on SIGTERM append "TERM <unixnano>" to FILE, exit 0
//	ignore-term FILE      ignore SIGTERM, run until killed
//	exit-after DUR FILE   exit 0 after DUR
//	watch-bytes PORT FILE see watchBytes
//
// Modes that take FILE create FILE.ready once their signal handling is in
// place, so the test never races the handler.
func runHelper(mode string, args []string) int {
	switch mode {
	case "stamp":
		appendLine(args[0], fmt.Sprintf("stamp %d", time.Now().UnixNano()))
		return 0
	case "exit-on-term":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		markReady(args[0])
		<-ch
		appendLine(args[0], fmt.Sprintf("TERM %d", time.Now().UnixNano()))
		return 0
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		markReady(args[0])
		select {}
	case "watch-bytes":
		port, err := strconv.Atoi(args[0])
		if err != nil {
			return 2
		}
		return watchBytes(port, args[1])
	case "exit-after":
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return 2
		}
		markReady(args[1])
		time.Sleep(d)
		return 0
	}
	return 2
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		os.Exit(3)
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

func markReady(file string) {
	if err := os.WriteFile(file+".ready", nil, 0o644); err != nil {
		os.Exit(3)
	}
}

// helperCommand is the argv that runs the test binary as a helper.
func helperCommand(mode string, args ...string) []string {
	return append([]string{os.Args[0], helperArg, mode}, args...)
}

// testProc is a Process over a real child in its own process group,
// started through the reaper, that records what the sequence sent it.
type testProc struct {
	child *supervisor.Child

	mu      sync.Mutex
	signals []syscall.Signal
	kills   int
}

// startHelper starts the test binary as a helper child and waits until it
// is ready for signals. file is where the helper writes what it saw.
func startHelper(t *testing.T, mode string, args ...string) (*testProc, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "events")
	argv := helperCommand(mode, append(args, file)...)
	p := startProc(t, argv...)
	require.Eventually(t, func() bool {
		_, err := os.Stat(file + ".ready")
		return err == nil
	}, 10*time.Second, 5*time.Millisecond, "helper %s never got ready", mode)
	return p, file
}

func startProc(t *testing.T, argv ...string) *testProc {
	t.Helper()
	child, err := testReaper.Start(supervisor.Spec{Argv: argv, Stdin: os.Stdin, Stdout: os.Stderr, Stderr: os.Stderr})
	require.NoError(t, err)
	p := &testProc{child: child}
	t.Cleanup(func() {
		_ = child.Kill()
		<-child.Done()
	})
	return p
}

func (p *testProc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	p.signals = append(p.signals, sig)
	p.mu.Unlock()
	return p.child.Signal(sig) // the group: these children are not single-child
}

func (p *testProc) Kill() error {
	p.mu.Lock()
	p.kills++
	p.mu.Unlock()
	return p.child.Kill()
}

func (p *testProc) Exited() <-chan struct{} { return p.child.Exited() }

// SignalRest does nothing: Signal already reaches the whole group.
func (p *testProc) SignalRest(syscall.Signal) error { return nil }

func (p *testProc) Done() <-chan struct{} { return p.child.Done() }

func (p *testProc) sent() (signals []syscall.Signal, kills int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]syscall.Signal(nil), p.signals...), p.kills
}

// exitStatus waits for the child and returns how it ended.
func (p *testProc) exitStatus(t *testing.T) syscall.WaitStatus {
	t.Helper()
	select {
	case <-p.child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("child did not exit")
	}
	return syscall.WaitStatus(p.child.Status())
}

// readEvents returns the helper's event lines as name → unix nanoseconds.
func readEvents(t *testing.T, file string) map[string]int64 {
	t.Helper()
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]int64{}
	}
	require.NoError(t, err)
	events := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		name, ns, ok := strings.Cut(line, " ")
		require.True(t, ok, "bad event line %q", line)
		n, err := strconv.ParseInt(ns, 10, 64)
		require.NoError(t, err)
		events[name] = n
	}
	return events
}

// observed returns a logger whose entries the test can inspect.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return zap.New(core), logs
}
