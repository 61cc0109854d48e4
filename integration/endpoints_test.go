package integration

// The --listen endpoints (/readyz, /livez, /startupz, /metrics) through every
// phase of a run, and the --admin-listen endpoints (contract sections 4, 5
// and 8).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// healthEndpoints are the URLs of one lifecycled's --listen address.
type healthEndpoints struct{ base string }

func newEndpoints(t testing.TB) (healthEndpoints, string) {
	addr := fmt.Sprintf("127.0.0.1:%d", loopbackPort(t))
	return healthEndpoints{"http://" + addr}, addr
}

func (e healthEndpoints) url(path string) string { return e.base + path }

// startListening starts `lifecycled --listen ADDR args...` (quickExit) on
// a free loopback port: its endpoints, and the process.
func startListening(t testing.TB, args ...string) (healthEndpoints, *proc) {
	t.Helper()
	ep, addr := newEndpoints(t)
	p := start(t, options{env: quickExit()}, append([]string{"--listen", addr}, args...)...)
	require.NotNil(t, p)
	return ep, p
}

// all returns the status and body of /readyz, /livez and /startupz with
// ?verbose.
func (e healthEndpoints) all(ctx context.Context) map[string]checkAnswer {
	out := map[string]checkAnswer{}
	for _, p := range []string{"/readyz", "/livez", "/startupz"} {
		code, body, err := fetch(ctx, http.MethodGet, e.url(p+"?verbose"))
		out[p] = checkAnswer{code, body, err}
	}
	return out
}

type checkAnswer struct {
	code int
	body string
	err  error
}

// TestEndpointsThroughPhases follows one run from waiting to exit:
// dependencies, postStart, running, draining, gone.
func TestEndpointsThroughPhases(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	dep := newFlipServer(t, http.StatusServiceUnavailable)

	args := []string{"--wait", dep.URL + "/", "--wait-interval", "100ms",
		"--post-start", "sleep 1", "--drain-delay", "5s", "--"}
	ep, p := startListening(t, append(args, childTrapsTerm(dir)...)...)

	// Waiting for the dependency.
	require.NoError(t, poll(ctx, func() bool { return dep.hits.Load() > 0 && getStatus(ctx, ep.url("/livez")) != 0 }))
	a := ep.all(ctx)
	assert.Equal(t, http.StatusServiceUnavailable, a["/readyz"].code)
	assert.Contains(t, a["/readyz"].body, "[-]dependencies failed: ")
	assert.Contains(t, a["/readyz"].body, "readyz check failed")
	assert.Equal(t, http.StatusOK, a["/livez"].code, "livez while waiting: alive and making progress")
	assert.Equal(t, http.StatusServiceUnavailable, a["/startupz"].code)
	code, body, err := fetch(ctx, http.MethodGet, ep.url("/readyz"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.NotContains(t, body, "waiting for dependencies", "reasons are for ?verbose only")

	// The child runs, postStart (sleep 1) does not have finished.
	dep.set(http.StatusOK)
	_, err = waitStatus(ctx, ep.url("/readyz/child"), http.StatusOK)
	require.NoError(t, err)
	a = ep.all(ctx)
	assert.Equal(t, http.StatusServiceUnavailable, a["/readyz"].code, "ready during postStart")
	assert.Contains(t, a["/readyz"].body, "[+]dependencies ok")
	assert.Contains(t, a["/readyz"].body, "[-]poststart failed: ")
	assert.Equal(t, http.StatusServiceUnavailable, a["/startupz"].code, "started during postStart")

	// postStart done: everything passes.
	body, err = waitStatus(ctx, ep.url("/readyz?verbose"), http.StatusOK)
	require.NoError(t, err, "never ready after postStart; stderr so far:\n%s", readAll(p.errFile))
	for _, l := range lines(body) {
		if strings.HasPrefix(l, "[") {
			assert.True(t, strings.HasPrefix(l, "[+]"), "check line %q", l)
		}
	}
	assert.Contains(t, body, "readyz check passed")
	for _, name := range []string{"dependencies", "child", "poststart", "shutdown"} {
		assert.Contains(t, body, "[+]"+name+" ok")
	}
	a = ep.all(ctx)
	assert.Equal(t, http.StatusOK, a["/startupz"].code)
	assert.Equal(t, http.StatusOK, a["/livez"].code)
	code, body, err = fetch(ctx, http.MethodGet, ep.url("/readyz"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", body)

	// SIGTERM: not ready at once, still live while the drain delay runs.
	sent := time.Now()
	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	body, err = waitStatus(ctx, ep.url("/readyz?verbose"), http.StatusServiceUnavailable)
	require.NoError(t, err)
	assert.Less(t, time.Since(sent), 3*time.Second, "readiness did not fail well inside the 5 s drain delay")
	assert.Contains(t, body, "[-]shutdown failed: draining")
	assert.Equal(t, http.StatusOK, getStatus(ctx, ep.url("/livez")), "livez during the drain delay")
	assert.NoFileExists(t, filepath.Join(dir, "term"), "the child got SIGTERM before the drain delay")

	res := p.wait(ctx)
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	assert.GreaterOrEqual(t, time.Since(sent), 4900*time.Millisecond, "the 5 s drain delay was not kept")

	// Gone: nothing listens any more.
	_, _, err = fetch(ctx, http.MethodGet, ep.url("/livez"))
	assert.True(t, isRefused(err), "after exit: want connection refused, got %v", err)
}

// TestEndpointsReadinessProbe: /readyz follows --ready with the kubelet's
// thresholds.
func TestEndpointsReadinessProbe(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	app := newFlipServer(t, http.StatusOK)
	const period = 200 * time.Millisecond

	ep, p := startListening(t, "--ready", app.URL+"/healthz",
		"--ready-period", period.String(), "--ready-failure-threshold", "3", "--ready-success-threshold", "2",
		"--", "sleep", "60")
	_, err := waitStatus(ctx, ep.url("/readyz"), http.StatusOK)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, app.countSince(time.Time{}, http.StatusOK), 2, "ready before successThreshold successes")

	flipped := time.Now()
	app.set(http.StatusInternalServerError)
	body, err := waitStatus(ctx, ep.url("/readyz?verbose"), http.StatusServiceUnavailable)
	require.NoError(t, err)
	failures := app.countSince(flipped, http.StatusInternalServerError)
	t.Logf("unready after %d failures, %s", failures, time.Since(flipped))
	assert.GreaterOrEqual(t, failures, 3, "unready before failureThreshold failures")
	assert.Contains(t, body, "[-]readiness-probe failed: ")
	assert.Contains(t, body, "500")
	assert.Equal(t, http.StatusOK, getStatus(ctx, ep.url("/livez")), "a failing readiness probe is no liveness failure")

	flipped = time.Now()
	app.set(http.StatusOK)
	_, err = waitStatus(ctx, ep.url("/readyz"), http.StatusOK)
	require.NoError(t, err)
	successes := app.countSince(flipped, http.StatusOK)
	t.Logf("ready again after %d successes, %s", successes, time.Since(flipped))
	assert.GreaterOrEqual(t, successes, 2, "ready before successThreshold successes")

	m, err := scrape(ctx, ep)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, m.value(`lifecycled_probe_total{result="failure"}`), 3.0)
	assert.GreaterOrEqual(t, m.value(`lifecycled_probe_total{result="success"}`), 4.0)
	assert.Equal(t, 1.0, m.value("lifecycled_ready"))

	res, _ := p.terminate(ctx)
	assert.Equal(t, 143, res.code, "stderr:\n%s", res.stderr)
}

// TestEndpointsReadinessExecProbe: an exec: readiness probe runs every
// period without a single spurious failure (its exit status must reach the
// prober, not lifecycled's reaping loop), and follows the command's result.
func TestEndpointsReadinessExecProbe(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	flag := filepath.Join(t.TempDir(), "healthy")
	require.NoError(t, os.WriteFile(flag, nil, 0o644))

	ep, p := startListening(t, "--ready", "exec:test -e "+flag,
		"--ready-period", "50ms", "--ready-failure-threshold", "1", "--", "sleep", "60")
	_, err := waitStatus(ctx, ep.url("/readyz"), http.StatusOK)
	require.NoError(t, err)
	var m metricsScrape
	require.NoError(t, poll(ctx, func() bool {
		m, err = scrape(ctx, ep)
		return err == nil && m.value(`lifecycled_probe_total{result="success"}`) >= 20
	}))
	assert.Equal(t, 0.0, m.value(`lifecycled_probe_total{result="failure"}`), "a probe of a command exiting 0 failed")
	assert.Equal(t, 0.0, m.value("lifecycled_zombies_reaped_total"), "probe commands counted as adopted orphans")

	require.NoError(t, os.Remove(flag))
	body, err := waitStatus(ctx, ep.url("/readyz?verbose"), http.StatusServiceUnavailable)
	require.NoError(t, err)
	assert.Contains(t, body, "[-]readiness-probe failed: ")
	require.NoError(t, os.WriteFile(flag, nil, 0o644))
	_, err = waitStatus(ctx, ep.url("/readyz"), http.StatusOK)
	require.NoError(t, err)

	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	assert.Equal(t, 143, p.wait(testContext(t, 6*time.Second)).code)
}

// TestEndpointsStopWhileExecProbeRuns: a stop that finds an exec: readiness
// probe running ends as quickly as any other: the probe's command is killed
// and reaped, and lifecycled exits.
func TestEndpointsStopWhileExecProbeRuns(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	// A probe that takes longer than its period is running nearly always.
	ep, p := startListening(t, "--ready", "exec:sleep 0.3",
		"--ready-period", "100ms", "--", "sleep", "60")
	_, err := waitStatus(ctx, ep.url("/readyz"), http.StatusOK)
	require.NoError(t, err)

	sent := time.Now()
	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	res := p.wait(testContext(t, 6*time.Second))
	assert.Equal(t, 143, res.code, "stderr:\n%s", res.stderr)
	assert.Less(t, time.Since(sent), 3*time.Second)
}

// TestEndpointsMetrics: /metrics passes promtool and holds the contract's
// metrics, with values that follow what happened.
func TestEndpointsMetrics(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Fatal("promtool not installed: .ci/test.sh installs it (apt-get install prometheus)")
	}
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	dep := acceptingListener(t, "tcp", "127.0.0.1:0")
	depTarget := "tcp://" + dep

	// The child handles USR1, and leaves an orphan behind for lifecycled
	// to reap: the inner sh exits at once, its sleep is adopted.
	script := fmt.Sprintf(`trap 'echo USR1 >> %[1]s/usr1' USR1; trap 'exit 0' TERM
sh -c 'sleep 0.2 &'; : > %[1]s/ready
while :; do sleep 0.05; done`, dir)
	ep, p := startListening(t, "--wait", depTarget, "--ready", depTarget, "--ready-period", "100ms",
		"--post-start", "true", "--drain-delay", "300ms", "--pre-stop", "sleep 1", "--", "sh", "-c", script)
	require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
	_, err := waitStatus(ctx, ep.url("/readyz"), http.StatusOK)
	require.NoError(t, err, "stderr so far:\n%s", readAll(p.errFile))

	require.NoError(t, p.signal(ctx, syscall.SIGUSR1))
	require.NoError(t, waitFile(ctx, filepath.Join(dir, "usr1")))

	var m metricsScrape
	require.NoError(t, poll(ctx, func() bool {
		m, err = scrape(ctx, ep)
		return err == nil && m.value("lifecycled_zombies_reaped_total") >= 1 && m.value("lifecycled_probe_total{result=\"success\"}") >= 1
	}), "last scrape: %v\n%s", err, m.text)

	out, err := promtoolCheck(ctx, m.text)
	assert.NoError(t, err, "promtool check metrics: %s", out)
	assert.Empty(t, out, "promtool check metrics has something to say")

	assert.Equal(t, 1.0, m.value("lifecycled_ready"))
	timeToReady := m.value("lifecycled_time_to_ready_seconds")
	assert.Greater(t, timeToReady, 0.0, "time to ready")
	assert.Less(t, timeToReady, time.Since(p.started).Seconds(), "time to ready longer than the run so far")
	buildInfo := regexp.MustCompile(`(?m)^lifecycled_build_info\{goversion="go[0-9.]+",revision="[^"]+",version="[^"]+"\} 1$`)
	assert.Regexp(t, buildInfo, m.text)
	assert.Equal(t, 1.0, m.value(`lifecycled_phase{phase="running"}`))
	for _, phase := range []string{"waiting", "starting", "draining", "exited"} {
		assert.Equal(t, 0.0, m.value(`lifecycled_phase{phase="`+phase+`"}`), phase)
	}
	assert.Equal(t, 1.0, m.value(`lifecycled_dependency_up{target="`+depTarget+`"}`))
	assert.True(t, m.has(`lifecycled_dependency_wait_seconds{target="`+depTarget+`"}`))
	assert.GreaterOrEqual(t, m.value(`lifecycled_probe_total{result="success"}`), 1.0)
	assert.True(t, m.has(`lifecycled_probe_total{result="failure"}`))
	assert.Equal(t, 1.0, m.value(`lifecycled_hook_duration_seconds_count{hook="postStart",result="success"}`), "postStart ran once and succeeded")
	assert.Equal(t, 0.0, m.value(`lifecycled_hook_duration_seconds_count{hook="postStart",result="failure"}`))
	assert.True(t, m.has(`lifecycled_hook_duration_seconds_bucket{hook="preStop",result="success",le="+Inf"}`))
	assert.Equal(t, 1.0, m.value(`lifecycled_signals_forwarded_total{signal="SIGUSR1"}`))
	assert.Equal(t, 1.0, m.value("lifecycled_zombies_reaped_total"), "one orphan was left behind")
	for _, step := range []string{"drain_delay", "drain_connections", "pre_stop", "grace"} {
		assert.True(t, m.has(`lifecycled_stop_phase_seconds{step="`+step+`"}`), step)
	}
	assert.True(t, m.has("go_goroutines"), "the Go collector")
	assert.True(t, m.has("process_cpu_seconds_total"), "the process collector")
	for _, name := range m.names() {
		ok := strings.HasPrefix(name, "lifecycled_") || strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
		assert.True(t, ok, "metric %s from some other registry", name)
	}
	assert.NotContains(t, m.text, "promhttp_metric_handler", "the default registry's handler metrics")

	// Stopping: the drain delay's length shows while preStop (sleep 1) runs.
	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	require.NoError(t, poll(ctx, func() bool {
		m, err = scrape(ctx, ep)
		return err == nil && m.value(`lifecycled_stop_phase_seconds{step="drain_delay"}`) > 0
	}), "last scrape: %v\n%s", err, m.text)
	drained := m.value(`lifecycled_stop_phase_seconds{step="drain_delay"}`)
	assert.GreaterOrEqual(t, drained, 0.29, "the 300ms drain delay")
	assert.Less(t, drained, 1.2, "the drain delay's step alone, not with the 1 s preStop")
	assert.Equal(t, 1.0, m.value(`lifecycled_phase{phase="draining"}`))
	assert.Equal(t, 0.0, m.value("lifecycled_ready"))
	assert.Equal(t, timeToReady, m.value("lifecycled_time_to_ready_seconds"), "set once, at the first ready")

	res := p.wait(ctx)
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
}

// TestEndpointsServerLimits: a client cannot hold the server with a header
// that never ends, nor make it read a huge one.
func TestEndpointsServerLimits(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	ep, addr := newEndpoints(t)
	p := start(t, options{env: quickExit()}, "--listen", addr, "--", "sleep", "60")
	require.NotNil(t, p)
	_, err := waitStatus(ctx, ep.url("/livez"), http.StatusOK)
	require.NoError(t, err)

	t.Run("header too large", func(t *testing.T) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.url("/readyz"), nil)
		require.NoError(t, err)
		req.Header.Set("X-Padding", strings.Repeat("a", 64<<10))
		resp, err := testHTTPClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	})
	t.Run("header never finished", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		sent := time.Now()
		_, err = io.WriteString(conn, "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(8*time.Second)))
		_, err = io.Copy(io.Discard, conn) // returns at EOF: the server hung up
		elapsed := time.Since(sent)
		assert.NoError(t, err, "the connection was still open after 8s (want ReadHeaderTimeout 5s)")
		assert.Less(t, elapsed, 7*time.Second)
		assert.Greater(t, elapsed, 3*time.Second, "cut off far sooner than ReadHeaderTimeout")
	})
	t.Run("only GET and HEAD", func(t *testing.T) {
		code, _, err := fetch(ctx, http.MethodPost, ep.url("/readyz"))
		require.NoError(t, err)
		assert.Equal(t, http.StatusMethodNotAllowed, code)
	})

	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	assert.Equal(t, 143, p.wait(ctx).code)
}

// TestEndpointsAdmin: POST /drain fails readiness and keeps the child; POST
// /quitquitquit runs the stop sequence; other methods are refused.
func TestEndpointsAdmin(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	admin := fmt.Sprintf("http://127.0.0.1:%d", loopbackPort(t))

	ep, p := startListening(t, append([]string{"--admin-listen", strings.TrimPrefix(admin, "http://"),
		"--pre-stop", "date +%s%N > " + filepath.Join(dir, "prestop"), "--"}, childTrapsTerm(dir)...)...)
	_, err := waitStatus(ctx, ep.url("/readyz"), http.StatusOK)
	require.NoError(t, err)

	for _, path := range []string{"/drain", "/quitquitquit"} {
		code, _, err := fetch(ctx, http.MethodGet, admin+path)
		require.NoError(t, err)
		assert.Equal(t, http.StatusMethodNotAllowed, code, "GET %s", path)
	}
	assert.Equal(t, http.StatusOK, getStatus(ctx, ep.url("/readyz")), "a GET drained it")

	code, _, err := fetch(ctx, http.MethodPost, admin+"/drain")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	a := ep.all(ctx)
	assert.Equal(t, http.StatusServiceUnavailable, a["/readyz"].code)
	assert.Contains(t, a["/readyz"].body, "[-]shutdown failed: ")
	assert.Equal(t, http.StatusOK, a["/livez"].code)
	time.Sleep(300 * time.Millisecond)
	assert.False(t, p.hasExited(), "POST /drain stopped lifecycled")
	assert.NoFileExists(t, filepath.Join(dir, "term"), "POST /drain stopped the child")
	assert.NoFileExists(t, filepath.Join(dir, "prestop"))

	code, _, err = fetch(ctx, http.MethodPost, admin+"/quitquitquit")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	res := p.wait(ctx)
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	preStop, term := preStopAndTerm(t, ctx, dir)
	assert.True(t, preStop.Before(term), "preStop ran after the stop signal")
}

// TestEndpointsAdminRefusesNonLoopback: the admin endpoints never listen
// where the rest of the pod's network could reach them.
func TestEndpointsAdminRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "10.1.2.3:9999"} {
		marker := filepath.Join(t.TempDir(), "started")
		res := runQuick(t, ctx, "--admin-listen", addr, "--", "touch", marker)
		assert.Equal(t, 2, res.code, "%s: stderr:\n%s", addr, res.stderr)
		assertOneCause(t, res.stderr, addr)
		assert.NoFileExists(t, marker)
	}
}

// metricsScrape is one scrape of /metrics.
type metricsScrape struct{ text string }

func scrape(ctx context.Context, ep healthEndpoints) (metricsScrape, error) {
	code, body, err := fetch(ctx, http.MethodGet, ep.url("/metrics"))
	if err != nil {
		return metricsScrape{}, err
	}
	if code != http.StatusOK {
		return metricsScrape{body}, fmt.Errorf("GET /metrics: status %d", code)
	}
	return metricsScrape{body}, nil
}

// sample finds the value of series (as exposed: name{labels sorted}).
func (m metricsScrape) sample(series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(m.text))
	for sc.Scan() {
		l := sc.Text()
		rest, ok := strings.CutPrefix(l, series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		return v, err == nil
	}
	return 0, false
}

func (m metricsScrape) has(series string) bool { _, ok := m.sample(series); return ok }

// value is the series' value, NaN if it is missing (so that every
// comparison fails).
func (m metricsScrape) value(series string) float64 {
	v, ok := m.sample(series)
	if !ok {
		return math.NaN()
	}
	return v
}

// names are the metric families in the scrape.
func (m metricsScrape) names() []string {
	var out []string
	for _, l := range lines(m.text) {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			out = append(out, f[2])
		}
	}
	return out
}

// promtoolCheck runs `promtool check metrics` on text and returns what it
// printed.
func promtoolCheck(ctx context.Context, text string) (string, error) {
	cmd := exec.CommandContext(ctx, "promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestEndpointsDrainReadiness: --drain-readiness decides what /readyz
// answers during the drain delay: fail (the default) 503 from SIGTERM on,
// keep 200 until the child is gone, with the tombstone saying draining
// either way. The child gets its stop signal only after the delay.
func TestEndpointsDrainReadiness(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		during int
	}{
		{"", http.StatusServiceUnavailable},
		{"fail", http.StatusServiceUnavailable},
		{"keep", http.StatusOK},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			dir := t.TempDir()
			stones := t.TempDir()
			args := []string{"--drain-delay", "2s", "--tombstone-dir", stones, "--name", "app"}
			if tc.mode != "" {
				args = append(args, "--drain-readiness", tc.mode)
			}
			ep, p := startListening(t, append(append(args, "--"), childTrapsTerm(dir)...)...)
			_, err := waitStatus(ctx, ep.url("/readyz"), http.StatusOK)
			require.NoError(t, err)

			require.NoError(t, p.signal(ctx, syscall.SIGTERM))
			require.NoError(t, poll(ctx, func() bool {
				b, err := os.ReadFile(filepath.Join(stones, "app.json"))
				return err == nil && strings.Contains(string(b), `"phase":"draining"`)
			}))
			for range 5 { // across the 2 s delay, not only its first instant
				code, body, err := fetch(ctx, http.MethodGet, ep.url("/readyz?verbose"))
				require.NoError(t, err)
				assert.Equal(t, tc.during, code, "/readyz during the drain delay: %s", body)
				time.Sleep(200 * time.Millisecond)
			}
			assert.NoFileExists(t, filepath.Join(dir, "term"), "the child got SIGTERM before the drain delay")
			res := p.wait(ctx)
			assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
		})
	}
}

// TestEndpointsDrainReadinessKeepStopSignal: with --drain-readiness keep,
// /readyz stays 200 while the app serves through the drain delay, and
// answers 503 from the moment the app is told to stop, though the app (one
// that closes its listener on SIGTERM and exits 3 s later) is still
// running: within one readiness probe period of its SIGTERM. Before, it
// stayed 200 until the probe had failed its threshold (3 periods).
func TestEndpointsDrainReadinessKeepStopSignal(t *testing.T) {
	const period = 200 * time.Millisecond
	ctx := testContext(t, 30*time.Second)
	p, ep, term, _ := startKeepReady(t, ctx, period, []string{"--drain-delay", "1s"}, "-exit-delay", "3s")

	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	var during []int
	var first503 time.Time
	for first503.IsZero() && ctx.Err() == nil {
		code := getStatus(ctx, ep.url("/readyz"))
		if code == http.StatusServiceUnavailable {
			first503 = time.Now()
			break
		}
		during = append(during, code)
		time.Sleep(10 * time.Millisecond)
	}
	// /readyz turns 503 as the stop signal is sent: the app may write
	// down its SIGTERM a moment later (and not atomically).
	var termAt time.Time
	require.NoError(t, poll(ctx, func() bool {
		var err error
		termAt, err = zdReadNanos(term)
		return err == nil
	}), "the app got its SIGTERM")
	assert.Contains(t, during, http.StatusOK, "/readyz stayed 200 while the app served")
	assert.NotContains(t, during, 0, "lifecycled answered throughout")
	assert.Less(t, first503.Sub(termAt), period, "/readyz answered 503 within one probe period of the app's SIGTERM (first 503 at %s)",
		first503.Sub(termAt))
	body, _ := waitStatus(ctx, ep.url("/readyz?verbose"), http.StatusServiceUnavailable)
	assert.Contains(t, body, "stop signal sent")
	res := p.wait(ctx)
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	t.Logf("first 503 %s after the app's SIGTERM", first503.Sub(termAt).Round(time.Millisecond))
}

// TestEndpointsDrainReadinessKeepProbeFails: with --drain-readiness keep and
// the adaptive drain, the readiness probe goes on while lifecycled drains
// (it used to pause, since its connections looked like traffic), so an
// app that becomes unready during the drain turns /readyz 503 before the
// stop signal, while its probes do not keep the drain from ending.
func TestEndpointsDrainReadinessKeepProbeFails(t *testing.T) {
	const period = 100 * time.Millisecond
	ctx := testContext(t, 30*time.Second)
	p, ep, term, unready := startKeepReady(t, ctx, period,
		[]string{"--drain-quiet", "500ms", "--drain-min", "3s", "--drain-delay", "20s", "--ready-failure-threshold", "1"})

	sent := time.Now()
	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	time.Sleep(5 * period) // probes run during the drain
	assert.Equal(t, http.StatusOK, getStatus(ctx, ep.url("/readyz")), "/readyz stays 200 in keep mode while the app is ready")
	require.NoError(t, os.WriteFile(unready, nil, 0o644))
	body, err := waitStatus(ctx, ep.url("/readyz?verbose"), http.StatusServiceUnavailable)
	require.NoError(t, err)
	assert.Contains(t, body, "[-]readiness-probe failed")
	assert.NoFileExists(t, term, "/readyz failed before the app got its stop signal")

	res := p.wait(ctx)
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	assert.Contains(t, res.stderr, "no new connection or request byte for the quiet period", "the probes did not hold the drain to its ceiling")
	termAt, err := zdReadNanos(term)
	require.NoError(t, err)
	assert.Less(t, termAt.Sub(sent), 10*time.Second, "the drain ended at --drain-min, far from its 20 s ceiling")
}

// startKeepReady starts lifecycled --drain-readiness keep with flags, its
// --ready probing testdata/backend every period, and waits until /readyz
// passes. The backend takes appFlags and writes its SIGTERM's time to term;
// its /healthz fails while unready exists.
func startKeepReady(t *testing.T, ctx context.Context, period time.Duration, flags []string, appFlags ...string) (p *proc, ep healthEndpoints, term, unready string) {
	t.Helper()
	backend := zdBackend(t)
	dir := t.TempDir()
	term, unready = filepath.Join(dir, "term"), filepath.Join(dir, "unready")
	ep, addr := newEndpoints(t)
	app := fmt.Sprintf("127.0.0.1:%d", loopbackPort(t))
	args := append([]string{"--listen", addr, "--drain-readiness", "keep", "--grace-period", "10s",
		"--ready", "http://" + app + "/healthz", "--ready-period", period.String()}, flags...)
	args = append(append(args, "--", backend, "-addr", app, "-term-file", term, "-unready-file", unready), appFlags...)
	p = start(t, options{env: zdEnv}, args...)
	require.NotNil(t, p)
	_, err := waitStatus(ctx, ep.url("/readyz"), http.StatusOK)
	require.NoError(t, err)
	return p, ep, term, unready
}

// TestEndpointsDrainReadinessBad: a mode that is neither fail nor keep is
// a usage error.
func TestEndpointsDrainReadinessBad(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	res := runQuick(t, ctx, "--drain-readiness", "sometimes", "--", "true")
	assert.Equal(t, 2, res.code)
	assert.Contains(t, res.stderr, `--drain-readiness "sometimes": want fail or keep`)
}
