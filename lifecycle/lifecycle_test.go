package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/hooks"
	"github.com/lifecycled/lifecycled/internal/promtest"
	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/probes"
	"github.com/lifecycled/lifecycled/supervisor"
	"github.com/lifecycled/lifecycled/tombstone"
)

// fakeChild is a supervised child whose life the test decides: it exits
// when the test says so, or as its app would on a signal. It makes the
// lifecycle's paths exact and instant; TestRunRealChild covers the real
// wiring through the reaper.
type fakeChild struct {
	exited, done chan struct{}
	// onSignal is the app: what it does when sent sig (nil: nothing).
	onSignal func(f *fakeChild, sig syscall.Signal)

	once    sync.Once
	mu      sync.Mutex
	status  unix.WaitStatus
	signals []syscall.Signal
}

func newFakeChild(onSignal func(*fakeChild, syscall.Signal)) *fakeChild {
	return &fakeChild{exited: make(chan struct{}), done: make(chan struct{}), onSignal: onSignal}
}

// exitCode and killedBy are wait statuses as the kernel encodes them.
func exitCode(code int) unix.WaitStatus           { return unix.WaitStatus(code << 8) }
func killedBy(sig syscall.Signal) unix.WaitStatus { return unix.WaitStatus(sig) }

// exit ends the child and its group with ws.
func (f *fakeChild) exit(ws unix.WaitStatus) { f.end(ws, true) }

// exitLeaving ends the child with ws but not its group: processes are left
// in it until groupGone.
func (f *fakeChild) exitLeaving(ws unix.WaitStatus) { f.end(ws, false) }

func (f *fakeChild) end(ws unix.WaitStatus, groupGone bool) {
	f.once.Do(func() {
		f.mu.Lock()
		f.status = ws
		f.mu.Unlock()
		// Done first: a child alone in its group is gone with its group,
		// and whoever sees Exited must find Done closed too, or it would
		// take the group for still there and signal it (a real race
		// seen in CI, not a behaviour).
		if groupGone {
			close(f.done)
		}
		close(f.exited)
	})
}

func (f *fakeChild) groupGone() { close(f.done) }

func (f *fakeChild) Signal(sig syscall.Signal) error {
	f.mu.Lock()
	f.signals = append(f.signals, sig)
	f.mu.Unlock()
	if f.onSignal != nil {
		f.onSignal(f, sig)
	}
	return nil
}

func (f *fakeChild) SignalRest(syscall.Signal) error { return nil }
func (f *fakeChild) Kill() error                     { return f.Signal(syscall.SIGKILL) }
func (f *fakeChild) Exited() <-chan struct{}         { return f.exited }
func (f *fakeChild) Done() <-chan struct{}           { return f.done }
func (f *fakeChild) Pid() int                        { return 4242 }
func (f *fakeChild) ReturnTerminal() error           { return nil }

func (f *fakeChild) LeftInGroup() []string { return nil }

func (f *fakeChild) FinalStatus() unix.WaitStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeChild) sent() []syscall.Signal {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]syscall.Signal(nil), f.signals...)
}

// exitOn is an app that dies of the signals in sigs, as a default handler
// would.
func exitOn(sigs ...syscall.Signal) func(*fakeChild, syscall.Signal) {
	return func(f *fakeChild, sig syscall.Signal) {
		for _, s := range sigs {
			if s == sig {
				go f.exit(killedBy(sig))
			}
		}
	}
}

// clock is the fixed time the tests' tombstones are written at.
var clock = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

type harness struct {
	l       *Lifecycle
	reg     *prometheus.Registry
	logs    *observer.ObservedLogs // lifecycled's log, every level
	dir     string                 // tombstone dir
	termLog string
}

// newHarness builds a Lifecycle over child (nil: start fails with
// startErr) with a tombstone, a termination log and a fixed clock.
func newHarness(t *testing.T, cfg Config, fake *fakeChild, startErr error) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{reg: prometheus.NewPedanticRegistry(), dir: dir, termLog: filepath.Join(dir, "termination-log")}
	if cfg.Name == "" {
		cfg.Name = "app"
	}
	if cfg.Command == nil {
		cfg.Command = []string{"app"}
	}
	if cfg.Stop.GracePeriod == 0 {
		cfg.Stop.GracePeriod = 5 * time.Second
	}
	cfg.TombstoneDir = dir
	cfg.TerminationLog = h.termLog
	core, logs := observer.New(zap.DebugLevel)
	h.logs = logs
	h.l = New(cfg, Deps{Logger: zap.New(core), Registry: h.reg})
	h.l.now = func() time.Time { return clock }
	h.l.start = func(supervisor.Spec) (child, error) {
		if startErr != nil {
			return nil, startErr
		}
		return fake, nil
	}
	return h
}

// run runs the lifecycle in the background; the result comes on the
// returned channel.
func (h *harness) run(t *testing.T, ctx context.Context) <-chan int {
	t.Helper()
	code := make(chan int, 1)
	go func() { code <- h.l.Run(ctx) }()
	return code
}

func (h *harness) wait(t *testing.T, code <-chan int) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return -1
	}
}

func (h *harness) started(t *testing.T) {
	t.Helper()
	select {
	case <-h.l.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the child was never started")
	}
}

// terminationMessage is the termination message's reason: what comes
// before the drain report's line, which terminationReport returns ("" if
// none).
func (h *harness) terminationMessage(t *testing.T) string {
	t.Helper()
	reason, _ := h.terminationParts(t)
	return reason
}

func (h *harness) terminationReport(t *testing.T) string {
	t.Helper()
	_, report := h.terminationParts(t)
	return report
}

func (h *harness) terminationParts(t *testing.T) (reason, report string) {
	t.Helper()
	b, err := os.ReadFile(h.termLog)
	require.NoError(t, err)
	reason, report, _ = strings.Cut(string(b), "\ndrain report: ")
	if report != "" {
		report = "drain report: " + report
	}
	return reason, report
}

// tombstone reads the wire format, as a neighbour container would.
func (h *harness) tombstone(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, "app.json"))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// causes are the error records of lifecycled's log, as "msg: error": the
// one line naming the cause of a failure that is not the child's.
func (h *harness) causes() []string {
	var out []string
	for _, e := range h.logs.FilterLevelExact(zap.ErrorLevel).All() {
		out = append(out, fmt.Sprintf("%s: %v", e.Message, e.ContextMap()["error"]))
	}
	return out
}

func (h *harness) phase(t *testing.T, phase string) float64 {
	t.Helper()
	return promtest.Value(t, h.reg, "lifecycled_phase", map[string]string{"phase": phase})
}

func TestRunChildExitsByItself(t *testing.T) {
	tests := []struct {
		name       string
		status     unix.WaitStatus
		exitMap    []string
		wantCode   int
		wantMsg    string
		wantSignal any
	}{
		{"exit 3", exitCode(3), nil, 3,
			"child exited with code 3 (phase running); the child exited by itself", nil},
		{"exit 143 mapped to 0", exitCode(143), []string{"143:0"}, 0,
			"child exited with code 143 (exit code 143 mapped to 0) (phase running); the child exited by itself", nil},
		{"killed", killedBy(syscall.SIGKILL), nil, 137,
			"child killed by SIGKILL (phase running); the child exited by itself", "SIGKILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := supervisor.ParseExitCodeMap(tt.exitMap)
			require.NoError(t, err)
			c := newFakeChild(nil)
			h := newHarness(t, Config{ExitCodeMap: m}, c, nil)
			code := h.run(t, context.Background())
			h.started(t)
			// The running phase comes just after the start, once postStart
			// (none here) is done.
			assert.Eventually(t, func() bool { return h.phase(t, tombstone.PhaseRunning) == 1 }, 5*time.Second, time.Millisecond)
			c.exit(tt.status)

			assert.Equal(t, tt.wantCode, h.wait(t, code))
			assert.Equal(t, tt.wantMsg, h.terminationMessage(t))
			assert.Equal(t, map[string]any{
				"name": "app", "phase": "exited", "pid": 4242.0, "exitCode": float64(tt.wantCode),
				"signal": tt.wantSignal, "updatedAt": "2026-11-30T03:00:00Z",
			}, h.tombstone(t))
			assert.Equal(t, 1.0, h.phase(t, tombstone.PhaseExited))
			assert.Equal(t, 0.0, h.phase(t, tombstone.PhaseRunning))
			assert.Empty(t, c.sent(), "a child that exited by itself gets no stop signal")
			assert.Empty(t, h.causes(), "the child's end is not lifecycled's failure")
		})
	}
}

// A child that exits by itself but leaves a process in its group that
// ignores the stop signal: at once, long before the grace period ends,
// readiness fails with a reason, the phase is draining (tombstone and
// metric) and one line says what is being stopped; exited comes, with the
// child's code, once the group is gone.
func TestRunChildExitsLeavingProcesses(t *testing.T) {
	c := newFakeChild(nil)
	h := newHarness(t, Config{Stop: drain.Config{StopSignal: syscall.SIGTERM, GracePeriod: time.Minute}}, c, nil)
	readyz := func() (int, string) {
		w := httptest.NewRecorder()
		h.l.Endpoints().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz?verbose", nil))
		return w.Code, w.Body.String()
	}
	code := h.run(t, context.Background())
	h.started(t)
	assert.Eventually(t, func() bool { return h.phase(t, tombstone.PhaseRunning) == 1 }, 5*time.Second, time.Millisecond)
	status, _ := readyz()
	require.Equal(t, http.StatusOK, status)

	c.exitLeaving(exitCode(3))
	assert.Eventually(t, func() bool { return h.phase(t, tombstone.PhaseDraining) == 1 }, 5*time.Second, time.Millisecond)
	status, body := readyz()
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Contains(t, body, "[-]child failed: child exited with code 3; stopping what is left of its process group")
	assert.Eventually(t, func() bool { // written in the background: it may not be there yet
		b, _ := os.ReadFile(filepath.Join(h.dir, "app.json"))
		return strings.Contains(string(b), `"phase":"draining"`)
	}, 5*time.Second, time.Millisecond)
	lines := h.logs.FilterMessage("child exited; stopping what is left of its process group").All()
	if assert.Len(t, lines, 1) {
		assert.Equal(t, int64(3), lines[0].ContextMap()["exit_code"])
		assert.Equal(t, "SIGTERM", lines[0].ContextMap()["stop_signal"])
	}
	assert.Eventually(t, func() bool { return len(c.sent()) == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, []syscall.Signal{syscall.SIGTERM}, c.sent(), "the stop signal for what is left")

	c.groupGone()
	assert.Equal(t, 3, h.wait(t, code))
	assert.Equal(t, "exited", h.tombstone(t)["phase"])
	assert.Equal(t, 3.0, h.tombstone(t)["exitCode"])
	assert.Equal(t, 1.0, h.phase(t, tombstone.PhaseExited))
}

// Every way to ask for a stop runs the stop sequence: readiness off,
// draining, the stop signal, and the termination message says why.
func TestRunStop(t *testing.T) {
	tests := []struct {
		name     string
		stop     func(h *harness, cancel context.CancelCauseFunc)
		wantCode int
		wantWhy  string
	}{
		{"SIGTERM", func(h *harness, _ context.CancelCauseFunc) { h.l.Signal(syscall.SIGTERM) },
			143, "stopped: received SIGTERM"},
		{"SIGINT", func(h *harness, _ context.CancelCauseFunc) { h.l.Signal(syscall.SIGINT) },
			143, "stopped: received SIGINT"},
		{"POST /quitquitquit", func(h *harness, _ context.CancelCauseFunc) {
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/quitquitquit", nil)
			w := httptest.NewRecorder()
			h.l.Admin().ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				panic(w.Body.String())
			}
		}, 143, "stopped: POST /quitquitquit"},
		// Another actor failed: the child is stopped, never left behind.
		{"context ended", func(_ *harness, cancel context.CancelCauseFunc) { cancel(errors.New("serve 127.0.0.1:9: boom")) },
			143, "stopped: internal error: serve 127.0.0.1:9: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeChild(exitOn(syscall.SIGTERM))
			h := newHarness(t, Config{Stop: drain.Config{StopSignal: syscall.SIGTERM}}, c, nil)
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			code := h.run(t, ctx)
			h.started(t)
			tt.stop(h, cancel)

			assert.Equal(t, tt.wantCode, h.wait(t, code))
			assert.Equal(t, []syscall.Signal{syscall.SIGTERM}, c.sent())
			assert.Equal(t, "child killed by SIGTERM (phase draining); "+tt.wantWhy, h.terminationMessage(t))
			rec := httptest.NewRecorder()
			h.l.health.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "not ready after the stop")
		})
	}
}

// A child that ignores the stop signal is killed at the end of the grace
// period, and the termination message says so.
func TestRunStopGracePeriod(t *testing.T) {
	c := newFakeChild(exitOn(syscall.SIGKILL))
	h := newHarness(t, Config{Stop: drain.Config{StopSignal: syscall.SIGUSR1, GracePeriod: 50 * time.Millisecond}}, c, nil)
	code := h.run(t, context.Background())
	h.started(t)
	h.l.Signal(syscall.SIGTERM)

	assert.Equal(t, 137, h.wait(t, code))
	assert.Equal(t, []syscall.Signal{syscall.SIGUSR1, syscall.SIGKILL}, c.sent())
	assert.Equal(t, "child killed by SIGKILL (phase draining); stopped: received SIGTERM; SIGKILL after the 50ms grace period",
		h.terminationMessage(t))
}

func TestRunStartFails(t *testing.T) {
	err := &supervisor.StartError{Path: "nope", Code: 127, Err: fs.ErrNotExist}
	h := newHarness(t, Config{}, nil, err)
	assert.Equal(t, 127, h.wait(t, h.run(t, context.Background())))
	assert.Equal(t, []string{"cannot start the child: nope: command not found: file does not exist"}, h.causes())
	assert.Equal(t, "nope: command not found: file does not exist (phase starting)", h.terminationMessage(t))
	ts := h.tombstone(t)
	assert.Equal(t, "exited", ts["phase"])
	assert.Equal(t, 0.0, ts["pid"], "no child ever ran")
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestRunDependencies(t *testing.T) {
	target, err := probes.ParseTarget("tcp://"+closedPort(t), false)
	require.NoError(t, err)
	cfg := Config{Waits: []probes.Target{target}, Wait: probes.WaitConfig{MaxInterval: 50 * time.Millisecond, Timeout: 200 * time.Millisecond}}

	t.Run("timeout", func(t *testing.T) {
		h := newHarness(t, cfg, nil, errors.New("must not start"))
		assert.Equal(t, ExitWaitTimeout, h.wait(t, h.run(t, context.Background())))
		if causes := h.causes(); assert.Len(t, causes, 1, "one line") {
			assert.Contains(t, causes[0], target.String())
		}
		assert.Contains(t, h.terminationMessage(t), "(phase waiting)")
	})
	t.Run("SIGTERM while waiting", func(t *testing.T) {
		cfg := cfg
		cfg.Wait.Timeout = 0 // wait for ever
		h := newHarness(t, cfg, nil, errors.New("must not start"))
		code := h.run(t, context.Background())
		h.l.Signal(syscall.SIGTERM)
		assert.Equal(t, 143, h.wait(t, code))
		assert.Equal(t, "stopped while waiting for dependencies: received SIGTERM (phase waiting)", h.terminationMessage(t))
		assert.Empty(t, h.causes())
	})
}

// A failed postStart stops the child as on SIGTERM, then exits 125.
func TestRunPostStartFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not today", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	c := newFakeChild(exitOn(syscall.SIGTERM))
	hook := &hooks.Hook{Name: hooks.PostStart, HTTPURL: srv.URL, Timeout: 5 * time.Second}
	h := newHarness(t, Config{PostStart: hook, Stop: drain.Config{StopSignal: syscall.SIGTERM}}, c, nil)

	assert.Equal(t, exitPostStart, h.wait(t, h.run(t, context.Background())))
	assert.Equal(t, []syscall.Signal{syscall.SIGTERM}, c.sent())
	want := "postStart hook failed: httpGet " + srv.URL + ": status 500"
	assert.Equal(t, []string{want}, h.causes())
	assert.Equal(t, want+" (phase starting); child killed by SIGTERM", h.terminationMessage(t))
}

// --on-exit-post reaches every URL with lifecycled's User-Agent, https with
// a self-signed certificate included (httpclient's policy).
func TestPostOnExit(t *testing.T) {
	var mu sync.Mutex
	var got []string
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.UserAgent())
	})
	plain := httptest.NewServer(handler)
	t.Cleanup(plain.Close)
	tlsSrv := httptest.NewTLSServer(handler)
	t.Cleanup(tlsSrv.Close)

	c := newFakeChild(nil)
	h := newHarness(t, Config{OnExitPost: []string{plain.URL + "/quitquitquit", tlsSrv.URL + "/shutdown"}, UserAgent: "lifecycled/test"}, c, nil)
	code := h.run(t, context.Background())
	h.started(t)
	c.exit(exitCode(0))
	assert.Equal(t, 0, h.wait(t, code))
	assert.ElementsMatch(t, []string{"POST /quitquitquit lifecycled/test", "POST /shutdown lifecycled/test"}, got)
}

// The endpoints follow the lifecycle: not ready before the start (but
// alive: /livez is "alive and making progress", and waiting is progress),
// ready while running, not ready once POST /drain says so; one check alone
// at /ENDPOINT/CHECK.
func TestEndpoints(t *testing.T) {
	c := newFakeChild(nil)
	h := newHarness(t, Config{}, c, nil)
	status := func(handler http.Handler, method, target string) int {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, httptest.NewRequest(method, target, nil))
		return w.Code
	}
	assert.Equal(t, http.StatusServiceUnavailable, status(h.l.Endpoints(), http.MethodGet, "/readyz"))
	assert.Equal(t, http.StatusOK, status(h.l.Endpoints(), http.MethodGet, "/livez"), "alive before the start")
	assert.Equal(t, http.StatusServiceUnavailable, status(h.l.Endpoints(), http.MethodGet, "/readyz/child"))
	assert.Equal(t, http.StatusOK, status(h.l.Endpoints(), http.MethodGet, "/readyz/shutdown"))
	assert.Equal(t, http.StatusNotFound, status(h.l.Endpoints(), http.MethodGet, "/readyz/nosuch"))
	assert.Equal(t, 0.0, valueOf(t, h.l.metrics.timeToReady), "never ready yet")
	code := h.run(t, context.Background())
	h.started(t)
	assert.Eventually(t, func() bool { return h.phase(t, tombstone.PhaseRunning) == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, http.StatusOK, status(h.l.Endpoints(), http.MethodGet, "/readyz"))
	assert.Equal(t, http.StatusOK, status(h.l.Endpoints(), http.MethodGet, "/livez"))
	assert.Equal(t, http.StatusOK, status(h.l.Endpoints(), http.MethodGet, "/startupz"))
	assert.Equal(t, http.StatusOK, status(h.l.Endpoints(), http.MethodGet, "/metrics"))
	assert.Equal(t, http.StatusOK, status(h.l.Endpoints(), http.MethodGet, "/readyz/child"))
	assert.Equal(t, http.StatusOK, status(h.l.Endpoints(), http.MethodGet, "/livez/ping"))
	assert.Positive(t, valueOf(t, h.l.metrics.timeToReady), "time to ready set once ready")

	assert.Equal(t, http.StatusOK, status(h.l.Admin(), http.MethodPost, "http://localhost/drain"))
	assert.Equal(t, http.StatusServiceUnavailable, status(h.l.Endpoints(), http.MethodGet, "/readyz"))
	assert.Equal(t, http.StatusOK, status(h.l.Endpoints(), http.MethodGet, "/livez"), "drained, still alive")
	assert.Equal(t, 0.0, valueOf(t, h.l.metrics.ready))
	c.exit(exitCode(0))
	assert.Equal(t, 0, h.wait(t, code))
}

// The admin guard answers only requests a process on this host makes on
// purpose: Host must be loopback (against DNS rebinding), and a browser's
// cross-origin request is refused (against a form POST from a web page).
func TestAdminGuard(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		host    string
		headers map[string]string
		want    int
	}{
		{"curl to 127.0.0.1", http.MethodPost, "127.0.0.1:9901", nil, http.StatusOK},
		{"curl to localhost", http.MethodPost, "localhost:9901", nil, http.StatusOK},
		{"LOCALHOST without port", http.MethodPost, "LOCALHOST", nil, http.StatusOK},
		{"::1", http.MethodPost, "[::1]:9901", nil, http.StatusOK},
		{"127.0.0.2", http.MethodPost, "127.0.0.2", nil, http.StatusOK},
		{"same-origin browser", http.MethodPost, "127.0.0.1:9901", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"rebound domain", http.MethodPost, "evil.example:9901", nil, http.StatusForbidden},
		{"pod IP", http.MethodPost, "10.0.0.7:9901", nil, http.StatusForbidden},
		{"localhost as a suffix", http.MethodPost, "localhost.evil.example", nil, http.StatusForbidden},
		{"empty Host", http.MethodPost, "", nil, http.StatusForbidden},
		{"cross-site form post", http.MethodPost, "127.0.0.1:9901", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"foreign Origin", http.MethodPost, "127.0.0.1:9901", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"GET is no admin verb", http.MethodGet, "127.0.0.1:9901", nil, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var called bool
			guarded := adminGuard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost {
					w.WriteHeader(http.StatusMethodNotAllowed)
					return
				}
				called = true
			}))
			req := httptest.NewRequest(tt.method, "/quitquitquit", nil)
			req.Host = tt.host
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			guarded.ServeHTTP(w, req)
			assert.Equal(t, tt.want, w.Code, w.Body.String())
			assert.Equal(t, tt.want == http.StatusOK, called)
		})
	}
}

// The real wiring: the child starts through the reaper, its exit code comes
// back, and a signal sent before the start is remapped, delivered once it
// runs, and counted.
func TestRunRealChild(t *testing.T) {
	reaper := supervisor.NewReaper(zap.NewNop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	reaped := make(chan struct{})
	go func() { defer close(reaped); _ = reaper.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-reaped })

	out := filepath.Join(t.TempDir(), "out")
	remap, err := supervisor.ParseSignalMap([]string{"HUP:USR1"})
	require.NoError(t, err)
	l := New(Config{
		Name:        "sh",
		SignalMap:   remap,
		SingleChild: true, // the trap's sh alone, not its sleeps
		Command:     []string{"/bin/sh", "-c", `trap 'echo usr1 > ` + out + `; exit 7' USR1; while :; do sleep 0.01; done`},
	}, Deps{Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Reaper: reaper})
	l.Signal(syscall.SIGHUP) // before the start: remembered
	code := make(chan int, 1)
	go func() { code <- l.Run(context.Background()) }()
	select {
	case c := <-code:
		assert.Equal(t, 7, c)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "usr1\n", string(b))
	assert.Equal(t, 1.0, valueOf(t, l.metrics.forwarded.WithLabelValues("SIGUSR1")))
}

// valueOf reads a gauge's or counter's value.
func valueOf(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	require.NoError(t, m.Write(&d))
	if d.Gauge != nil {
		return d.GetGauge().GetValue()
	}
	return d.GetCounter().GetValue()
}

func TestLogArgv(t *testing.T) {
	assert.Equal(t, []string{"sh", "-c", "x"}, logArgv([]string{"sh", "-c", "x"}))
	long := logArgv([]string{"app", strings.Repeat("a", 1000)})
	assert.Equal(t, strings.Repeat("a", 256)+"... (1000 bytes)", long[1])
	many := make([]string, 1000)
	for i := range many {
		many[i] = "arg"
	}
	got := logArgv(many)
	assert.Len(t, got, 33)
	assert.Equal(t, "... (968 more)", got[32])
	// A long argument is masked before it is cut: cut first, a password
	// with its '@' beyond the cut was shown as it was.
	pw := strings.Repeat("S3cret", 60)
	for _, arg := range []string{"https://user:" + pw + "@h/", "--url=https://h/?token=" + pw} {
		shown := strings.Join(logArgv([]string{"app", arg}), " ")
		assert.NotContains(t, redact.URLs(shown), "S3cret", "as the core logs it")
	}
}

// ProbeLiveness: /livez follows the --live probe only between postStart and
// the stop: it fails when the probe does, and passes again once the stop
// sequence starts (a draining app is not hung).
func TestProbeLiveness(t *testing.T) {
	target, err := probes.ParseTarget("file://"+filepath.Join(t.TempDir(), "never"), false)
	require.NoError(t, err)
	live := &probes.ProbeSpec{Target: target, Period: 10 * time.Millisecond, Timeout: time.Second,
		SuccessThreshold: 1, FailureThreshold: 1, Liveness: true}
	c := newFakeChild(nil)
	h := newHarness(t, Config{Live: live}, c, nil)
	livez := func() (int, string) {
		w := httptest.NewRecorder()
		h.l.Endpoints().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/livez?verbose", nil))
		return w.Code, w.Body.String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	actorDone := make(chan error, 1)
	go func() { actorDone <- h.l.ProbeLiveness(ctx) }()
	defer func() { cancel(); require.NoError(t, <-actorDone) }()

	assert.Eventually(t, func() bool { _, b := livez(); return strings.Contains(b, "[+]liveness-probe ok") }, 5*time.Second, time.Millisecond,
		"passing before the start")
	code := h.run(t, context.Background())
	h.started(t)
	assert.Eventually(t, func() bool { c, _ := livez(); return c == http.StatusServiceUnavailable }, 10*time.Second, 5*time.Millisecond,
		"failing once the probe fails after postStart")
	_, body := livez()
	assert.Contains(t, body, "[-]liveness-probe failed")

	h.l.Signal(syscall.SIGTERM)
	assert.Eventually(t, func() bool { c, _ := livez(); return c == http.StatusOK }, 10*time.Second, 5*time.Millisecond,
		"passing again once the stop starts")
	c.exit(exitCode(0))
	h.wait(t, code)
}

func closedTarget(t *testing.T) probes.Target {
	target, err := probes.ParseTarget("tcp://"+closedPort(t), false)
	require.NoError(t, err)
	return target
}

// TestStartEarly: with nothing to come first, the child starts before Run
// (main builds the rest while it runs), and Run goes on from that start as
// if it had made it; with --wait or a tombstone lock to take, it does not.
func TestStartEarly(t *testing.T) {
	startErr := &supervisor.StartError{Path: "nope", Code: 127, Err: fs.ErrNotExist}
	tests := []struct {
		name      string
		cfg       Config
		tombstone bool
		startErr  error
		wantEarly bool
		wantCode  int
		wantErr   string
	}{
		{name: "nothing first", wantEarly: true, wantCode: 3},
		{name: "start fails", startErr: startErr, wantEarly: true, wantCode: 127,
			wantErr: "cannot start the child: nope: command not found: file does not exist"},
		{name: "dependencies first", cfg: Config{Waits: []probes.Target{closedTarget(t)},
			Wait: probes.WaitConfig{Timeout: 100 * time.Millisecond}}, wantCode: ExitWaitTimeout},
		{name: "tombstone lock first", tombstone: true, wantCode: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeChild(nil)
			h := newHarness(t, tt.cfg, c, tt.startErr)
			if !tt.tombstone {
				h.l.cfg.TombstoneDir = ""
			}
			var starts atomic.Int32
			start := h.l.start
			h.l.start = func(s supervisor.Spec) (child, error) { starts.Add(1); return start(s) }

			assert.Equal(t, tt.wantEarly, h.l.StartEarly())
			wantStarts := int32(0)
			if tt.wantEarly {
				wantStarts = 1
			}
			assert.Equal(t, wantStarts, starts.Load(), "started before Run")

			code := h.run(t, context.Background())
			if tt.startErr == nil && tt.cfg.Waits == nil {
				h.started(t)
				c.exit(exitCode(3))
			}
			assert.Equal(t, tt.wantCode, h.wait(t, code))
			assert.LessOrEqual(t, starts.Load(), int32(1), "one start, early or in Run")
			if tt.wantErr != "" {
				assert.Equal(t, []string{tt.wantErr}, h.causes())
			}
		})
	}
}
