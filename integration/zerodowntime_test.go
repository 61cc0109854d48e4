package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/integration/lbsim"
	"github.com/lifecycled/lifecycled/internal/proctest"
)

// TestZeroDowntimeRollingStop is the scenario lifecycled exists for: during
// a rolling update a pod leaves the Service's endpoints while its container
// is told to stop, and the proxies' rules lag behind.
//
// Two backends (testdata/backend: an HTTP server that, like most apps, calls
// http.Server.Shutdown on SIGTERM and so refuses new connections at once)
// sit behind lbsim's Balancer, an L4 proxy that routes each new client
// connection to a backend in rotation and drops a backend 1 s after its
// readiness URL starts failing (endpoints + kube-proxy lag). Clients send
// 200 requests/s through it, half on kept-alive connections, half on a new
// connection each. Mid-load, backend "a"'s init gets SIGTERM.
//
// Under lifecycled (--drain-delay 2s, the Balancer polling its /readyz)
// there is no failed request, by construction rather than by luck:
// /readyz fails the moment SIGTERM arrives, the Balancer sees it within one
// 100 ms poll and stops routing new connections to "a" 1 s later, and only
// at 2 s does the app get SIGTERM — 0.9 s of margin for a slow poll. The
// kept-alive connections already pinned to "a" (a conntrack entry does the
// same) are still served through the drain; when the app then shuts down,
// http.Server.Shutdown finishes requests in flight and closes idle
// connections, and Go's http.Transport retries an idempotent request on a
// reused connection the server closed, so that too costs no request. A
// client that did not retry would see those closes in a cluster as well;
// the model does not hide them, the client here is simply a correct one.
//
// Under tini the same run must fail requests: the app stops listening at
// once, and for the next second the Balancer (polling the app's own
// /healthz, the only readiness there is) still sends it new connections.
func TestZeroDowntimeRollingStop(t *testing.T) {
	backend := zdBackend(t)
	ctx := testContext(t, 2*time.Minute)

	var lcLog proctest.SyncBuffer
	lc, err := lbsim.RollingStop{
		Init: lbsim.InitLifecycled, InitPath: lifecycledBin(t), Backend: backend,
		DrainDelay: 2 * time.Second, Stderr: &lcLog, Env: zdEnv,
	}.Run(ctx)
	require.NoError(t, err, "lifecycled run; its log:\n%s", lcLog.String())
	zdLogRun(t, "lifecycled", lc)
	assert.NotContains(t, lcLog.String(), "WARNING: DATA RACE")

	assert.Zero(t, lc.Load.Failed, "failed requests under lifecycled: %s, e.g. %q", lc.Load, lc.Load.Samples)
	assert.Equal(t, 0, lc.ExitCode, "the app exits 0 after a graceful Shutdown, and lifecycled passes that on")
	assert.Positive(t, lc.Served, "the stopped backend served requests before the stop")
	assert.Positive(t, lc.Stopped().Conns, "the Balancer routed connections to the stopped backend")
	assert.Zero(t, lc.Stopped().DialErrors, "no new connection reached the stopped backend after it closed its listener")
	assert.GreaterOrEqual(t, lc.TermAfter, 2*time.Second, "the app got SIGTERM only after the drain delay")
	if drop, ok := zdDropped(lc, "a"); assert.True(t, ok, "the Balancer dropped the stopped backend: %+v", lc.Events) {
		assert.Less(t, drop, lc.TermAfter, "the Balancer dropped the backend before the app got SIGTERM")
	}
	assert.Greater(t, lc.Load.OK, int64(100), "the load ran: %s", lc.Load)

	var tiniLog proctest.SyncBuffer
	tini, err := lbsim.RollingStop{Init: lbsim.InitTini, Backend: backend, Stderr: &tiniLog, Env: zdEnv}.Run(ctx)
	require.NoError(t, err, "tini run; its log:\n%s", tiniLog.String())
	zdLogRun(t, "tini", tini)
	assert.Positive(t, tini.Load.Failed, "requests fail under tini: the comparison that makes the first run mean something")
	assert.Equal(t, 0, tini.ExitCode, "tini passes on the app's exit code")
	assert.Positive(t, tini.Served, "the stopped backend served requests before the stop")

	t.Logf("failed requests during a rolling stop: lifecycled %d of %d, tini %d of %d",
		lc.Load.Failed, lc.Load.OK+lc.Load.Failed, tini.Load.Failed, tini.Load.OK+tini.Load.Failed)
}

// TestZeroDowntimeAdaptiveDrain: with --drain-quiet, lifecycled watches
// the traffic to the app's port instead of guessing the propagation delay:
// for clients that open a connection per request and a short, a usual and
// a long propagation it loses no request, and the app gets SIGTERM soon
// after the Balancer dropped the backend, not at the 10 s ceiling.
func TestZeroDowntimeAdaptiveDrain(t *testing.T) {
	backend := zdBackend(t)
	ctx := testContext(t, 3*time.Minute)
	const (
		quiet   = time.Second
		ceiling = 10 * time.Second
	)
	for _, propagation := range []time.Duration{200 * time.Millisecond, time.Second, 3 * time.Second} {
		t.Run(propagation.String(), func(t *testing.T) {
			var log proctest.SyncBuffer
			r, err := lbsim.RollingStop{
				Init: lbsim.InitLifecycled, InitPath: lifecycledBin(t), Backend: backend,
				DrainDelay: ceiling, DrainQuiet: quiet, Propagation: propagation, NewConnWorkers: 8, Stderr: &log, Env: zdEnv,
			}.Run(ctx)
			require.NoError(t, err, "lifecycled run; its log:\n%s", log.String())
			zdLogRun(t, "lifecycled adaptive", r)

			assert.Zero(t, r.Load.Failed, "failed requests: %s, e.g. %q", r.Load, r.Load.Samples)
			assert.Zero(t, r.Stopped().DialErrors, "no new connection reached the stopped backend after it closed its listener")
			assert.Contains(t, log.String(), "no new connection or request byte for the quiet period", "the drain ended on quiet, not at the ceiling")
			drop, ok := zdDropped(r, "a")
			require.True(t, ok, "the Balancer dropped the stopped backend: %+v", r.Events)
			assert.Greater(t, r.TermAfter, drop, "the app got SIGTERM only after the Balancer dropped it")
			// The issue asks for quiet + 0.3 s; a busy shared machine gets
			// a second more here, and the bench reports the real figure.
			assert.Less(t, r.TermAfter, drop+quiet+1300*time.Millisecond, "the drain went on long after the traffic stopped")
			t.Logf("propagation %s: dropped at +%s, app SIGTERM at +%s (%s after the drop)", propagation,
				drop.Round(time.Millisecond), r.TermAfter.Round(time.Millisecond), (r.TermAfter - drop).Round(time.Millisecond))
		})
	}
}

// TestGracePeriodKillsChildIgnoringTerm: a child that ignores SIGTERM is
// SIGKILLed when the grace period runs out (exit 137), and the stop takes
// drain + grace, never less, and only a little more.
func TestGracePeriodKillsChildIgnoringTerm(t *testing.T) {
	const drainDelay, grace = 500 * time.Millisecond, time.Second
	backend := zdBackend(t)
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")

	p, child := zdStart(t, ctx, pidFile, "--drain-delay", drainDelay.String(), "--grace-period", grace.String(),
		"--", backend, "-on-term", "ignore", "-pid-file", pidFile)
	r, sent := p.terminate(ctx)
	took := p.ended.Sub(sent)

	assert.Equal(t, 137, r.code, "exit code after SIGKILL; stderr:\n%s", r.stderr)
	assert.GreaterOrEqual(t, took, drainDelay+grace, "SIGKILL comes only after the drain delay and the grace period")
	assert.Less(t, took, drainDelay+grace+time.Second, "the stop ends soon after the SIGKILL")
	assert.True(t, gone(child), "the child %d is gone", child)
	t.Logf("stop took %s: overshoot %s over drain %s + grace %s",
		took.Round(time.Microsecond), (took - drainDelay - grace).Round(time.Microsecond), drainDelay, grace)
}

// TestPreStopHappensBeforeStopSignal: the preStop hook runs after the drain
// delay and has finished before the child gets the stop signal.
func TestPreStopHappensBeforeStopSignal(t *testing.T) {
	const drainDelay, hookSleep = 200 * time.Millisecond, 300 * time.Millisecond
	backend := zdBackend(t)
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	preStop, term, pidFile := filepath.Join(dir, "prestop"), filepath.Join(dir, "term"), filepath.Join(dir, "pid")

	p, _ := zdStart(t, ctx, pidFile, "--drain-delay", drainDelay.String(), "--grace-period", "5s",
		"--pre-stop", fmt.Sprintf("date +%%s%%N > %s; sleep %g", preStop, hookSleep.Seconds()),
		"--", backend, "-term-file", term, "-pid-file", pidFile)
	r, sent := p.terminate(ctx)
	assert.Equal(t, 0, r.code, "the child exits 0 on SIGTERM; stderr:\n%s", r.stderr)

	hookAt, err := zdReadNanos(preStop)
	require.NoError(t, err, "the preStop hook ran")
	termAt, err := zdReadNanos(term)
	require.NoError(t, err, "the child got SIGTERM")
	assert.GreaterOrEqual(t, hookAt.Sub(sent), drainDelay, "preStop starts after the drain delay")
	assert.GreaterOrEqual(t, termAt.Sub(hookAt), hookSleep, "SIGTERM comes after the whole preStop hook")
	t.Logf("SIGTERM to lifecycled → preStop %s → child's SIGTERM %s",
		hookAt.Sub(sent).Round(time.Microsecond), termAt.Sub(sent).Round(time.Microsecond))
}

// TestHookTimeoutKillsHungPreStop: a preStop hook that hangs is killed at
// --hook-timeout and the stop goes on: the child gets SIGTERM and exits.
func TestHookTimeoutKillsHungPreStop(t *testing.T) {
	const hookTimeout = 500 * time.Millisecond
	backend := zdBackend(t)
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	term, pidFile := filepath.Join(dir, "term"), filepath.Join(dir, "pid")
	// A sleep no other process on the machine runs, to find it afterwards.
	hung := fmt.Sprintf("sleep 100.%09d", time.Now().Nanosecond())

	p, _ := zdStart(t, ctx, pidFile, "--pre-stop", hung, "--hook-timeout", hookTimeout.String(), "--grace-period", "5s",
		"--", backend, "-term-file", term, "-pid-file", pidFile)
	r, sent := p.terminate(ctx)
	took := p.ended.Sub(sent)

	assert.Equal(t, 0, r.code, "the stop goes on after the hook's timeout and the child exits 0; stderr:\n%s", r.stderr)
	termAt, err := zdReadNanos(term)
	if assert.NoError(t, err, "the child got SIGTERM") {
		assert.GreaterOrEqual(t, termAt.Sub(sent), hookTimeout, "SIGTERM only once the hook timed out")
	}
	assert.Less(t, took, hookTimeout+2*time.Second, "the hung hook does not hold the stop")
	assert.Contains(t, r.stderr, "timed out", "the hook's timeout is logged")
	assert.Empty(t, zdProcsRunning(hung), "the hung hook's processes were killed")
	t.Logf("stop took %s with a %s hook timeout", took.Round(time.Microsecond), hookTimeout)
}

// TestJobSidecarExitsWithMain: the Job case. Main and sidecar share a
// tombstone directory; when main's command ends, the sidecar (--exit-with
// main) stops soon after, and both tombstones end in phase exited.
func TestJobSidecarExitsWithMain(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()

	sidecar := start(t, options{}, "--tombstone-dir", dir, "--name", "sidecar", "--exit-with", "main", "--", "sleep", "1000")
	require.NotNil(t, sidecar)
	mainProc := start(t, options{}, "--tombstone-dir", dir, "--name", "main", "--", "sh", "-c", "sleep 1; exit 0")
	require.NotNil(t, mainProc)

	mr := mainProc.wait(ctx)
	sr := sidecar.wait(ctx)
	assert.Equal(t, 0, mr.code, "main's exit code; stderr:\n%s", mr.stderr)
	assert.Equal(t, 128+int(syscall.SIGTERM), sr.code, "the sidecar's sleep was stopped by SIGTERM; stderr:\n%s", sr.stderr)
	lag := sidecar.ended.Sub(mainProc.ended)
	// --exit-with polls every 250 ms; the rest is room for a busy machine.
	assert.Less(t, lag, 5*time.Second, "the sidecar exits soon after main")

	type tombstone struct {
		Phase    string  `json:"phase"`
		ExitCode *int    `json:"exitCode"`
		Signal   *string `json:"signal"`
	}
	read := func(name string) tombstone {
		var ts tombstone
		b, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if assert.NoError(t, err) {
			assert.NoError(t, json.Unmarshal(b, &ts), "%s", b)
		}
		return ts
	}
	m, s := read("main"), read("sidecar")
	assert.Equal(t, "exited", m.Phase)
	assert.Equal(t, "exited", s.Phase)
	if assert.NotNil(t, m.ExitCode, "main's exit code is recorded") {
		assert.Equal(t, 0, *m.ExitCode)
	}
	t.Logf("sidecar exited %s after main", lag.Round(time.Millisecond))
}

// zdEnv keeps a lifecycled built with -race from sleeping a second before
// it exits (the race runtime's default when goroutines are still alive), a
// second the stop-time measurements would otherwise count as lifecycled's.
var zdEnv = []string{"GORACE=atexit_sleep_ms=0"}

// builtOnce is a binary the tests build once, next to the binaries
// TestMain built.
type builtOnce struct {
	sync.Once
	path string
	err  error
}

// get builds the binary the first time, with build given d.
func (b *builtOnce) get(t *testing.T, d time.Duration, build func(ctx context.Context) (string, error)) string {
	t.Helper()
	lifecycledBin(t) // TestMain ran, binDir exists
	b.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		b.path, b.err = build(ctx)
	})
	require.NoError(t, b.err)
	return b.path
}

var zdBackendOnce builtOnce

// zdBackend builds testdata/backend once.
func zdBackend(t *testing.T) string {
	return zdBackendOnce.get(t, 2*time.Minute, func(ctx context.Context) (string, error) {
		return lbsim.BuildBackend(ctx, binDir)
	})
}

// zdDropped returns when, after the SIGTERM, the Balancer dropped backend.
func zdDropped(r lbsim.RollingStopResult, backend string) (time.Duration, bool) {
	for _, e := range r.Events {
		if e.Backend == backend && !e.Ready {
			return e.Applied.Sub(r.SignalAt), true
		}
	}
	return 0, false
}

func zdLogRun(t *testing.T, name string, r lbsim.RollingStopResult) {
	t.Helper()
	t.Logf("%s: %s; exit %d; stop %s (app got SIGTERM at +%s, app stop %s, extra %s); stopped backend served %d, conns %d, refused %d",
		name, r.Load, r.ExitCode, r.Stop.Round(time.Microsecond), r.TermAfter.Round(time.Microsecond),
		r.AppStop.Round(time.Microsecond), r.Extra().Round(time.Microsecond), r.Served, r.Stopped().Conns, r.Stopped().DialErrors)
	for _, e := range r.Events {
		if e.Seen.After(r.SignalAt) {
			t.Logf("%s: backend %s ready=%v seen at +%s (%s), rotation changed at +%s", name, e.Backend, e.Ready,
				e.Seen.Sub(r.SignalAt).Round(time.Millisecond), e.Reason, e.Applied.Sub(r.SignalAt).Round(time.Millisecond))
		}
	}
	if r.Load.Failed > 0 {
		first := r.Load.FailTimes[0].Sub(r.SignalAt)
		last := r.Load.FailTimes[len(r.Load.FailTimes)-1].Sub(r.SignalAt)
		t.Logf("%s: failures from +%s to +%s, e.g. %q", name, first.Round(time.Millisecond), last.Round(time.Millisecond), r.Load.Samples[0])
	}
}

// zdStart starts `lifecycled args...` with zdEnv and waits for its child
// to write its pid to pidFile.
func zdStart(t *testing.T, ctx context.Context, pidFile string, args ...string) (*proc, int) {
	t.Helper()
	p := start(t, options{env: zdEnv}, args...)
	require.NotNil(t, p)
	child, err := readPid(ctx, pidFile)
	require.NoError(t, err, "the child starts")
	return p, child
}

// zdReadNanos reads a Unix time in nanoseconds from path.
func zdReadNanos(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	return time.Unix(0, n), nil
}

// zdProcsRunning lists the pids whose command line contains s.
func zdProcsRunning(s string) []int {
	var pids []int
	for _, p := range allProcs() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid))
		if err == nil && strings.Contains(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})), s) {
			pids = append(pids, p.pid)
		}
	}
	return pids
}
