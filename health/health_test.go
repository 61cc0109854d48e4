package health

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve serves h's handler on 127.0.0.1 until the test ends.
func serve(t *testing.T, h *Checks) string {
	t.Helper()
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// get requests base+path and returns the status and body.
func get(t *testing.T, base, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestHealthReadyz(t *testing.T) {
	type set struct {
		name   string
		ok     bool
		reason string
	}
	tests := []struct {
		name        string
		sets        []set
		wantCode    int
		wantBody    string
		wantVerbose string
	}{
		{
			name:        "nothing registered",
			wantCode:    http.StatusServiceUnavailable,
			wantBody:    "readyz check failed\n",
			wantVerbose: "readyz check failed\n",
		},
		{
			name: "all pass",
			sets: []set{
				{"dependencies", true, ""},
				{"child", true, ""},
				{"poststart", true, ""},
			},
			wantCode:    http.StatusOK,
			wantBody:    "ok",
			wantVerbose: "[+]dependencies ok\n[+]child ok\n[+]poststart ok\nreadyz check passed\n",
		},
		{
			name: "one fails, order of first registration",
			sets: []set{
				{"dependencies", false, "waiting"},
				{"child", false, "not started"},
				{"probe", false, "status 500 Internal Server Error"},
				{"draining", true, ""},
				{"dependencies", true, ""},
				{"child", true, "ignored when ok"},
			},
			wantCode:    http.StatusServiceUnavailable,
			wantBody:    "[+]dependencies ok\n[+]child ok\n[-]probe failed: reason withheld\n[+]draining ok\nreadyz check failed\n",
			wantVerbose: "[+]dependencies ok\n[+]child ok\n[-]probe failed: status 500 Internal Server Error\n[+]draining ok\nreadyz check failed\n",
		},
		{
			name: "reason on one line, or a stand-in",
			sets: []set{
				{"probe", false, "exit status 1:\nline one\nline two\n"},
				{"draining", false, ""},
			},
			wantCode:    http.StatusServiceUnavailable,
			wantBody:    "[-]probe failed: reason withheld\n[-]draining failed: reason withheld\nreadyz check failed\n",
			wantVerbose: "[-]probe failed: exit status 1: line one line two\n[-]draining failed: no reason given\nreadyz check failed\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewChecks()
			url := serve(t, h)
			for _, s := range tt.sets {
				h.Set(s.name, s.ok, s.reason)
			}
			assert.Equal(t, tt.wantCode == http.StatusOK, h.Ready())

			code, body := get(t, url, http.MethodGet, "/readyz")
			assert.Equal(t, tt.wantCode, code)
			assert.Equal(t, tt.wantBody, body)

			code, body = get(t, url, http.MethodGet, "/readyz?verbose")
			assert.Equal(t, tt.wantCode, code)
			assert.Equal(t, tt.wantVerbose, body)

			code, body = get(t, url, http.MethodHead, "/readyz")
			assert.Equal(t, tt.wantCode, code)
			assert.Empty(t, body)
		})
	}
}

func TestHealthStartupz(t *testing.T) {
	h := NewChecks()
	url := serve(t, h)
	h.Set("child", true, "") // readiness does not make started

	code, body := get(t, url, http.MethodGet, "/startupz?verbose")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "[-]started failed: child not started or postStart not finished\nstartupz check failed\n", body)

	h.SetStarted(true)
	code, body = get(t, url, http.MethodGet, "/startupz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", body)
	code, body = get(t, url, http.MethodGet, "/startupz?verbose=1")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "[+]started ok\nstartupz check passed\n", body)

	h.SetStarted(false)
	code, _ = get(t, url, http.MethodGet, "/startupz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
}

// TestHealthLivez: /livez is alive-and-making-progress. Nothing that only
// waits fails it: not readiness, not a missing child; only a liveness check.
func TestHealthLivez(t *testing.T) {
	h := NewChecks()
	url := serve(t, h)
	h.Set("dependencies", false, "waiting for dependencies")
	h.Set("child", false, "not started")

	code, body := get(t, url, http.MethodGet, "/livez?verbose")
	assert.Equal(t, http.StatusOK, code, "livez while waiting: %s", body)
	assert.Equal(t, "[+]ping ok\nlivez check passed\n", body)
	assert.True(t, h.Live())

	h.SetLive("liveness-probe", true, "")
	code, body = get(t, url, http.MethodGet, "/livez")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", body)

	h.SetLive("liveness-probe", false, "status 500 Internal Server Error")
	assert.False(t, h.Live())
	code, body = get(t, url, http.MethodGet, "/livez")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "[+]ping ok\n[-]liveness-probe failed: reason withheld\nlivez check failed\n", body)
	code, body = get(t, url, http.MethodGet, "/livez?verbose")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "[+]ping ok\n[-]liveness-probe failed: status 500 Internal Server Error\nlivez check failed\n", body)
	assert.False(t, h.Ready(), "liveness does not make ready")
}

// TestHealthSingleCheckAndExclude: /ENDPOINT/CHECK and ?exclude=CHECK, as
// kube-apiserver serves them.
func TestHealthSingleCheckAndExclude(t *testing.T) {
	h := NewChecks()
	url := serve(t, h)
	h.Set("dependencies", true, "")
	h.Set("readiness-probe", false, "connection refused")
	h.Set("shutdown", true, "")
	h.SetLive("liveness-probe", false, "timed out")

	tests := []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/readyz/dependencies", http.StatusOK, "ok"},
		{"/readyz/dependencies?verbose", http.StatusOK, "[+]dependencies ok\nreadyz/dependencies check passed\n"},
		{"/readyz/readiness-probe", http.StatusServiceUnavailable, "[-]readiness-probe failed: reason withheld\nreadyz/readiness-probe check failed\n"},
		{"/readyz/readiness-probe?verbose", http.StatusServiceUnavailable, "[-]readiness-probe failed: connection refused\nreadyz/readiness-probe check failed\n"},
		{"/readyz/readiness-probe?exclude=readiness-probe", http.StatusServiceUnavailable, "[-]readiness-probe failed: reason withheld\nreadyz/readiness-probe check failed\n"},
		{"/readyz/nosuch", http.StatusNotFound, "/readyz has no check named \"nosuch\"\n"},
		{"/readyz/ping", http.StatusNotFound, "/readyz has no check named \"ping\"\n"},
		{"/livez/ping", http.StatusOK, "ok"},
		{"/livez/liveness-probe", http.StatusServiceUnavailable, "[-]liveness-probe failed: reason withheld\nlivez/liveness-probe check failed\n"},
		{"/livez/dependencies", http.StatusNotFound, "/livez has no check named \"dependencies\"\n"},
		{"/startupz/started", http.StatusServiceUnavailable, "[-]started failed: reason withheld\nstartupz/started check failed\n"},
		{"/readyz?exclude=readiness-probe", http.StatusOK, "ok"},
		{"/readyz?exclude=readiness-probe&verbose", http.StatusOK,
			"[+]dependencies ok\n[+]readiness-probe excluded: ok\n[+]shutdown ok\nreadyz check passed\n"},
		{"/readyz?exclude=shutdown&exclude=readiness-probe", http.StatusOK, "ok"},
		{"/readyz?exclude=shutdown", http.StatusServiceUnavailable,
			"[+]dependencies ok\n[-]readiness-probe failed: reason withheld\n[+]shutdown excluded: ok\nreadyz check failed\n"},
		{"/readyz?exclude=readiness-probe&exclude=typo&exclude=a%0Ab&verbose", http.StatusOK,
			"[+]dependencies ok\n[+]readiness-probe excluded: ok\n[+]shutdown ok\n" +
				"warn: some health checks cannot be excluded: no matches for \"a b\",\"typo\"\nreadyz check passed\n"},
		{"/livez?exclude=liveness-probe", http.StatusOK, "ok"},
		{"/livez?exclude=ping", http.StatusServiceUnavailable,
			"[+]ping excluded: ok\n[-]liveness-probe failed: reason withheld\nlivez check failed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, body := get(t, url, http.MethodGet, tt.path)
			assert.Equal(t, tt.wantCode, code)
			assert.Equal(t, tt.wantBody, body)
		})
	}
	code, _ := get(t, url, http.MethodHead, "/readyz/dependencies")
	assert.Equal(t, http.StatusOK, code)
	code, _ = get(t, url, http.MethodPost, "/livez/ping")
	assert.Equal(t, http.StatusMethodNotAllowed, code)
}

func TestHealthMethodsAndPaths(t *testing.T) {
	h := NewChecks()
	url := serve(t, h)
	h.Set("child", true, "")
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		for _, path := range []string{"/readyz", "/livez", "/startupz"} {
			req, err := http.NewRequest(method, url+path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", method, path)
			assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
		}
	}
	code, _ := get(t, url, http.MethodGet, "/healthz")
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = get(t, url, http.MethodGet, "/readyz")
	assert.Equal(t, http.StatusOK, code)
}

func TestHealthOnReadyChange(t *testing.T) {
	h := NewChecks()
	var got []bool
	h.OnReadyChange(func(ready bool) {
		assert.Equal(t, ready, h.Ready(), "a hook may read Checks, and sees the new state")
		got = append(got, ready)
	})
	h.Set("child", false, "starting")
	h.Set("child", true, "")     // → ready
	h.Set("probe", true, "")     // no change
	h.Set("draining", false, "") // → not ready
	h.Set("draining", false, "again")
	h.Set("draining", true, "") // → ready
	assert.Equal(t, []bool{false, true, false, true}, got, "once at registration, then once per change")
}

func TestHealthConcurrent(t *testing.T) {
	h := NewChecks()
	var last []bool
	var mu sync.Mutex
	h.OnReadyChange(func(ready bool) {
		mu.Lock()
		last = append(last, ready)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				h.Set("check", (i+j)%2 == 0, "flapping")
				h.SetLive("probe", j%2 == 0, "flapping")
				_ = h.Live()
				h.SetStarted(j%2 == 0)
				_ = h.Ready()
				resp, err := http.Get(srv.URL + "/readyz?verbose")
				if assert.NoError(t, err) {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	h.Set("check", true, "")
	mu.Lock()
	defer mu.Unlock()
	// Hooks ran in the order of the changes: the values alternate and the
	// last is the final state.
	require.NotEmpty(t, last)
	for i := 1; i < len(last); i++ {
		assert.NotEqual(t, last[i-1], last[i], "hook %d repeats a value", i)
	}
	assert.True(t, last[len(last)-1])
}
