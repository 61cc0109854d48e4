package integration

// /livez as "alive and making progress" (contract section 4): 200 while
// lifecycled waits, runs postStart and drains; 503 only once --live fails
// its threshold. And the kube-apiserver forms /ENDPOINT/CHECK and ?exclude.

import (
	"context"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// livezAlways polls /livez every 50 ms for d and fails the test at the first
// answer that is not 200; it returns how many answers it checked.
func livezAlways(t *testing.T, ctx context.Context, ep healthEndpoints, d time.Duration, while string) int {
	t.Helper()
	n := 0
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		code, body, err := fetch(ctx, http.MethodGet, ep.url("/livez?verbose"))
		require.NoError(t, err, while)
		require.Equal(t, http.StatusOK, code, "/livez %s: %s", while, body)
		n++
		time.Sleep(50 * time.Millisecond)
	}
	return n
}

// TestLivezWhileWaitingStartingDraining: a long dependency wait, a slow
// postStart and the drain all keep /livez at 200, also with --live set and
// its target down the whole time (the probe has not started yet, then has
// stopped).
func TestLivezWhileWaitingStartingDraining(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	dir := t.TempDir()
	dep := newFlipServer(t, http.StatusServiceUnavailable)
	app := newFlipServer(t, http.StatusInternalServerError) // the app's liveness endpoint, failing

	args := []string{"--wait", dep.URL + "/", "--wait-interval", "100ms", "--wait-timeout", "2m",
		"--post-start", "sleep 3", "--live", app.URL + "/healthz", "--live-period", "100ms", "--live-failure-threshold", "2",
		"--drain-delay", "2s", "--"}
	ep, p := startListening(t, append(args, childTrapsTerm(dir)...)...)

	// Waiting: 3 s of /livez, every answer 200, /readyz 503 meanwhile.
	_, err := waitStatus(ctx, ep.url("/livez"), http.StatusOK)
	require.NoError(t, err)
	n := livezAlways(t, ctx, ep, 3*time.Second, "while waiting for a dependency")
	assert.Equal(t, http.StatusServiceUnavailable, getStatus(ctx, ep.url("/readyz")))
	assert.NoFileExists(t, filepath.Join(dir, "ready"), "the child started before its dependency")
	t.Logf("%d /livez answers while waiting, all 200", n)

	// postStart (sleep 3): still 200, the liveness probe not running yet.
	dep.set(http.StatusOK)
	require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
	require.Equal(t, http.StatusServiceUnavailable, getStatus(ctx, ep.url("/startupz")), "postStart already over")
	livezAlways(t, ctx, ep, 2*time.Second, "during postStart")
	assert.Equal(t, http.StatusServiceUnavailable, getStatus(ctx, ep.url("/startupz")), "postStart over too early for the test")
	assert.Zero(t, app.hits.Load(), "the liveness probe ran before postStart finished")

	// Running: the probe starts and fails its threshold.
	body, err := waitStatus(ctx, ep.url("/livez?verbose"), http.StatusServiceUnavailable)
	require.NoError(t, err)
	assert.Contains(t, body, "[+]ping ok\n[-]liveness-probe failed: ")
	assert.Contains(t, body, "500")
	assert.Equal(t, http.StatusOK, getStatus(ctx, ep.url("/startupz")))

	// Draining: the probe stops and /livez passes for the whole drain.
	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	_, err = waitStatus(ctx, ep.url("/livez"), http.StatusOK)
	require.NoError(t, err)
	livezAlways(t, ctx, ep, 1200*time.Millisecond, "while draining")
	res := p.wait(ctx)
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
}

// TestLivezLiveProbe: --live against a real server on 127.0.0.1 that starts
// failing: /livez fails after exactly the threshold, says why with
// ?verbose, and passes again after one success (successThreshold 1).
func TestLivezLiveProbe(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	app := newFlipServer(t, http.StatusOK)
	ep, p := startListening(t, "--live", app.URL+"/healthz",
		"--live-period", "200ms", "--live-failure-threshold", "3", "--", "sleep", "60")

	require.NoError(t, poll(ctx, func() bool { return app.hits.Load() >= 2 }))
	body, err := waitStatus(ctx, ep.url("/livez?verbose"), http.StatusOK)
	require.NoError(t, err)
	assert.Equal(t, "[+]ping ok\n[+]liveness-probe ok\nlivez check passed\n", body)

	app.set(http.StatusServiceUnavailable)
	flipped := app.hits.Load()
	body, err = waitStatus(ctx, ep.url("/livez?verbose"), http.StatusServiceUnavailable)
	require.NoError(t, err)
	failedAt := app.hits.Load()
	assert.GreaterOrEqual(t, failedAt-flipped, int32(3), "/livez failed before 3 failed probes")
	assert.LessOrEqual(t, failedAt-flipped, int32(4), "/livez failed long after 3 failed probes")
	assert.Contains(t, body, "[-]liveness-probe failed: ")
	assert.Contains(t, body, "503")
	assert.Equal(t, http.StatusOK, getStatus(ctx, ep.url("/readyz")), "a failing liveness probe is no readiness failure")
	assert.Equal(t, http.StatusServiceUnavailable, getStatus(ctx, ep.url("/livez/liveness-probe")))
	assert.Equal(t, http.StatusOK, getStatus(ctx, ep.url("/livez/ping")))
	assert.Equal(t, http.StatusOK, getStatus(ctx, ep.url("/livez?exclude=liveness-probe")))

	app.set(http.StatusOK)
	_, err = waitStatus(ctx, ep.url("/livez"), http.StatusOK)
	require.NoError(t, err, "never live again after the app recovered")
	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	assert.Equal(t, 143, p.wait(ctx).code)
}

// TestEndpointsSingleCheckAndExclude: /readyz/CHECK, /livez/CHECK and
// ?exclude=CHECK on the built binary, as kube-apiserver serves them.
func TestEndpointsSingleCheckAndExclude(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	app := newFlipServer(t, http.StatusServiceUnavailable)
	ep, p := startListening(t, "--ready", app.URL+"/ready",
		"--ready-period", "100ms", "--", "sleep", "60")
	_, err := waitStatus(ctx, ep.url("/readyz/child"), http.StatusOK)
	require.NoError(t, err)

	tests := []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/readyz/child", http.StatusOK, "ok"},
		{"/readyz/dependencies?verbose", http.StatusOK, "[+]dependencies ok\nreadyz/dependencies check passed\n"},
		{"/readyz/readiness-probe", http.StatusServiceUnavailable, "[-]readiness-probe failed: reason withheld\nreadyz/readiness-probe check failed\n"},
		{"/readyz/nosuch", http.StatusNotFound, ""},
		{"/livez/nosuch", http.StatusNotFound, ""},
		{"/startupz/started", http.StatusOK, "ok"},
		{"/readyz", http.StatusServiceUnavailable, ""},
		{"/readyz?exclude=readiness-probe", http.StatusOK, "ok"},
		{"/readyz?exclude=readiness-probe&exclude=shutdown&verbose", http.StatusOK,
			"[+]dependencies ok\n[+]child ok\n[+]poststart ok\n[+]readiness-probe excluded: ok\n[+]shutdown excluded: ok\nreadyz check passed\n"},
		{"/readyz?exclude=typo", http.StatusServiceUnavailable, ""},
	}
	for _, tt := range tests {
		code, body, err := fetch(ctx, http.MethodGet, ep.url(tt.path))
		require.NoError(t, err)
		assert.Equal(t, tt.wantCode, code, "%s: %s", tt.path, body)
		if tt.wantBody != "" {
			assert.Equal(t, tt.wantBody, body, tt.path)
		}
	}
	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	assert.Equal(t, 143, p.wait(ctx).code)
}
