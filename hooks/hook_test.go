package hooks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/internal/proctest"
	"github.com/lifecycled/lifecycled/internal/promtest"
	"github.com/lifecycled/lifecycled/probes"
	"github.com/lifecycled/lifecycled/supervisor"
)

func TestHookDescribe(t *testing.T) {
	tests := []struct {
		name        string
		hook        Hook
		wantHandler string
		wantCommand string
		wantMax     time.Duration
	}{
		{"exec form", Hook{Exec: []string{"/bin/false"}}, HandlerExec, `["/bin/false"]`, DefaultTimeout},
		{"shell form", Hook{Exec: []string{"/bin/sh", "-c", "exit 3"}, Shell: true}, HandlerExec, "exit 3", DefaultTimeout},
		{"http", Hook{HTTPURL: "http://x/y", Timeout: time.Second}, HandlerHTTPGet, "http://x/y", time.Second},
		{"short sleep", Hook{Sleep: 5 * time.Second}, HandlerSleep, "5s", 5 * time.Second},
		{"sleep over timeout", Hook{Sleep: time.Minute, Timeout: 10 * time.Second}, HandlerSleep, "1m0s", 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.wantHandler, tt.hook.Handler())
			assert.Equal(t, tt.wantCommand, tt.hook.Command())
			assert.Equal(t, tt.wantMax, tt.hook.MaxDuration())
		})
	}
}

func shellHook(t *testing.T, script string, timeout time.Duration) Hook {
	t.Helper()
	argv, shell, err := supervisor.ParseCommand(script)
	require.NoError(t, err)
	return Hook{Name: PreStop, Exec: argv, Shell: shell, Timeout: timeout}
}

func TestRunExec(t *testing.T) {
	tests := []struct {
		name       string
		command    string
		wantErr    string // empty: success
		wantExit   int
		wantOutput []string
	}{
		{name: "exec success", command: `["/bin/true"]`, wantExit: 0},
		{name: "shell output both streams", command: `echo out; echo err >&2`, wantExit: 0, wantOutput: []string{"out\n", "err\n"}},
		{name: "exec failure", command: `["/bin/false"]`, wantErr: `exec ["/bin/false"]: exit code 1`, wantExit: 1},
		{name: "shell failure keeps output", command: `echo why; exit 3`, wantErr: `sh -c "echo why; exit 3": exit code 3`, wantExit: 3, wantOutput: []string{"why"}},
		{name: "not found", command: `["/nonexistent/hook"]`, wantErr: `exec ["/nonexistent/hook"]: start:`, wantExit: -1},
		{name: "killed by signal", command: `kill -KILL $$`, wantErr: "killed by SIGKILL", wantExit: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRunner(testReaper, zap.NewNop(), nil, nil, "")
			res := r.Run(context.Background(), shellHook(t, tt.command, 10*time.Second))
			assert.Equal(t, HandlerExec, res.Handler)
			assert.Equal(t, PreStop, res.Hook)
			assert.Equal(t, tt.wantExit, res.ExitCode)
			if tt.wantErr == "" {
				assert.NoError(t, res.Err)
			} else if assert.Error(t, res.Err) {
				assert.Contains(t, res.Err.Error(), tt.wantErr)
			}
			for _, want := range tt.wantOutput {
				assert.Contains(t, res.Output, want)
			}
			assert.False(t, res.Start.IsZero())
			assert.Positive(t, res.Duration)
		})
	}
}

// A hook that runs over is killed with its whole process group: a
// background grandchild must not survive the hook.
func TestRunExecTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := shellHook(t, "sleep 100 & echo $! > "+pidFile+"; sleep 100", 300*time.Millisecond)
	res, took := runWithin(t, 10*time.Second, h)

	require.Error(t, res.Err)
	assert.Contains(t, res.Err.Error(), "timed out after 300ms")
	assert.ErrorIs(t, res.Err, context.DeadlineExceeded)
	assert.Equal(t, -1, res.ExitCode)
	assert.GreaterOrEqual(t, took, 300*time.Millisecond)
	assert.Less(t, took, 5*time.Second)

	data, err := os.ReadFile(pidFile)
	require.NoError(t, err, "the hook never started its grandchild")
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return proctest.Gone(pid) }, 5*time.Second, 10*time.Millisecond,
		"grandchild %d survived the hook's timeout", pid)
}

// A hook that exits but leaves a background process holding its output
// pipe succeeds as soon as it exits, not when the background process does.
func TestRunExecBackgroundProcessDoesNotHoldHook(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := shellHook(t, "sleep 100 & echo $! > "+pidFile+"; echo started", 20*time.Second)
	res, took := runWithin(t, 15*time.Second, h)
	t.Cleanup(func() {
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				p, _ := os.FindProcess(pid)
				_ = p.Kill()
			}
		}
	})

	assert.NoError(t, res.Err)
	assert.Equal(t, 0, res.ExitCode)
	assert.Contains(t, res.Output, "started")
	assert.Less(t, took, 5*time.Second)
}

func TestRunExecBigOutput(t *testing.T) {
	tests := []struct{ name, command string }{
		{"stdout", "yes | head -c 5000000"},
		{"stderr", "yes | head -c 5000000 >&2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, took := runWithin(t, 20*time.Second, shellHook(t, tt.command, 20*time.Second))

			require.NoError(t, res.Err)
			assert.Less(t, took, 10*time.Second)
			assert.LessOrEqual(t, len(res.Output), 4096)
			assert.Greater(t, len(res.Output), 3500, "the head should be kept")
			assert.True(t, strings.HasPrefix(res.Output, "y\ny\ny\n"))
			assert.Contains(t, res.Output, "output cut: 5000000 bytes")
		})
	}
}

func TestRunCancelled(t *testing.T) {
	tests := []struct {
		name string
		hook Hook
	}{
		{"exec", shellHook(t, "sleep 100", 30*time.Second)},
		{"sleep", Hook{Name: PreStop, Sleep: 100 * time.Second, Timeout: 200 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRunner(testReaper, zap.NewNop(), nil, nil, "")
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			var res Result
			took := proctest.Within(t, 10*time.Second, func() { res = r.Run(ctx, tt.hook) })

			require.Error(t, res.Err)
			assert.ErrorIs(t, res.Err, context.Canceled)
			assert.Contains(t, res.Err.Error(), "cancelled after")
			assert.Less(t, took, 5*time.Second)
		})
	}
}

func TestRunSleep(t *testing.T) {
	tests := []struct {
		name     string
		hook     Hook
		wantErr  string
		atLeast  time.Duration
		lessThan time.Duration
	}{
		{"done", Hook{Sleep: 150 * time.Millisecond}, "", 150 * time.Millisecond, 3 * time.Second},
		{"zero", Hook{}, "", 0, 3 * time.Second},
		{"over timeout", Hook{Sleep: time.Minute, Timeout: 150 * time.Millisecond}, "sleep 1m0s: timed out after 150ms", 150 * time.Millisecond, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.hook.Name = PreStop
			res, took := runWithin(t, 10*time.Second, tt.hook)
			assert.Equal(t, HandlerSleep, res.Handler)
			if tt.wantErr == "" {
				assert.NoError(t, res.Err)
			} else if assert.Error(t, res.Err) {
				assert.Contains(t, res.Err.Error(), tt.wantErr)
			}
			assert.GreaterOrEqual(t, took, tt.atLeast)
			assert.Less(t, took, tt.lessThan)
		})
	}
}

func TestRunHTTPGet(t *testing.T) {
	var gotUA atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		gotUA.Store(r.Header.Get("User-Agent"))
		_, _ = w.Write([]byte("drained"))
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such hook", http.StatusNotFound)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name       string
		url        string
		wantStatus int
		wantErr    string
		wantOutput string
		timeout    time.Duration // 5s unless set: only "hang" should time out
	}{
		{name: "200", url: srv.URL + "/ok", wantStatus: 200, wantOutput: "drained"},
		{name: "redirect followed", url: srv.URL + "/redirect", wantStatus: 200, wantOutput: "drained"},
		{name: "404", url: srv.URL + "/missing", wantStatus: 404, wantErr: "status 404", wantOutput: "no such hook"},
		{name: "500", url: srv.URL + "/broken", wantStatus: 500, wantErr: "status 500"},
		{name: "hang", url: srv.URL + "/hang", wantErr: "timed out after 300ms", timeout: 300 * time.Millisecond},
		{name: "refused", url: closedURL + "/ok", wantErr: "connection refused"},
		{name: "big body", url: srv.URL + "/big", wantStatus: 200, wantOutput: "output cut: 10240 bytes"},
		{name: "bad url", url: "http://[::1", wantErr: "build request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRunner(testReaper, zap.NewNop(), nil, nil, "lifecycled-test/1")
			if tt.timeout == 0 {
				tt.timeout = 5 * time.Second
			}
			h := Hook{Name: PreStop, HTTPURL: tt.url, Timeout: tt.timeout}
			var res Result
			took := proctest.Within(t, 10*time.Second, func() { res = r.Run(context.Background(), h) })

			assert.Equal(t, HandlerHTTPGet, res.Handler)
			assert.Equal(t, tt.url, res.Command)
			assert.Equal(t, tt.wantStatus, res.HTTPStatus)
			assert.Equal(t, -1, res.ExitCode)
			if tt.wantErr == "" {
				assert.NoError(t, res.Err)
			} else if assert.Error(t, res.Err) {
				assert.Contains(t, res.Err.Error(), tt.wantErr)
				assert.True(t, strings.HasPrefix(res.Err.Error(), "httpGet "+tt.url+": "), res.Err.Error())
			}
			if tt.wantOutput != "" {
				assert.Contains(t, res.Output, tt.wantOutput)
			}
			assert.LessOrEqual(t, len(res.Output), 4096)
			assert.Less(t, took, 8*time.Second)
		})
	}
	assert.Equal(t, "lifecycled-test/1", gotUA.Load())
}

func TestRunRecordsMetricsAndLogs(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	logger, logs := observed()
	r := NewRunner(testReaper, logger, nil, m, "")

	r.Run(context.Background(), Hook{Name: PreStop, Sleep: time.Millisecond})
	r.Run(context.Background(), shellHook(t, "exit 1", time.Second))

	count := func(hook, result string) uint64 {
		return promtest.HistogramCount(t, reg, "lifecycled_hook_duration_seconds", map[string]string{"hook": hook, "result": result})
	}
	assert.Equal(t, uint64(1), count(PreStop, resultSuccess))
	assert.Equal(t, uint64(1), count(PreStop, resultFailure))
	assert.Equal(t, uint64(0), count(PostStart, resultSuccess))

	assert.Equal(t, 1, logs.FilterMessage("hook succeeded").Len())
	failed := logs.FilterMessage("hook failed").All()
	require.Len(t, failed, 1)
	assert.Equal(t, zap.WarnLevel, failed[0].Level)

	// The pedantic registry checks each metric's consistency on Gather.
	_, err := reg.Gather()
	assert.NoError(t, err)
}

func TestHeadBuffer(t *testing.T) {
	b := &headBuffer{limit: 10}
	n, err := b.Write([]byte("0123456"))
	require.NoError(t, err)
	assert.Equal(t, 7, n)
	assert.Equal(t, "0123456", b.String())
	n, err = b.Write([]byte("789abcdef"))
	require.NoError(t, err)
	assert.Equal(t, 9, n, "a short count would make os/exec stop reading the pipe")
	assert.True(t, strings.HasSuffix(b.String(), "[output cut: 16 bytes in all, first bytes kept]"))
}

func TestCutUTF8(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"}, // é is two bytes: never half of it
		{"héllo", 3, "hé"},
		{"日本", 4, "日"},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, cutUTF8(tt.in, tt.n), "cutUTF8(%q, %d)", tt.in, tt.n)
	}
}

// An httpGet hook uses the kubelet's client, as probes do: a URL that
// passes as --ready passes as a hook. A self-signed https preStop used to
// fail certificate verification where the same URL passed as a probe.
func TestRunHTTPGetAsTheKubelet(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("drained"))
	}))
	t.Cleanup(tlsSrv.Close)
	var otherHits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(other.Close)
	// The same port on another host name (localhost, not 127.0.0.1).
	otherHost := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, otherHost+"/", http.StatusFound)
	}))
	t.Cleanup(redirecting.Close)

	tests := []struct {
		name       string
		url        string
		wantStatus int
	}{
		{"self-signed https", tlsSrv.URL + "/", 200},
		// The kubelet does not follow a redirect to another host: the 302
		// is the answer, and a success.
		{"other-host redirect", redirecting.URL + "/", 302},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, err := probes.ParseTarget(tt.url, false)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			require.NoError(t, probes.Check(ctx, target, probes.Options{}), "passes as a probe")

			r := NewRunner(testReaper, zap.NewNop(), nil, nil, "")
			res := r.Run(context.Background(), Hook{Name: PreStop, HTTPURL: tt.url, Timeout: 5 * time.Second})
			assert.NoError(t, res.Err, "and so as a hook")
			assert.Equal(t, tt.wantStatus, res.HTTPStatus)
		})
	}
	assert.Zero(t, otherHits.Load(), "a redirect to another host is not followed")
}

// runWithin runs h with a runner of its own (no log, no hook log) and
// fails the test unless it returns within d: its result, and how long it
// took.
func runWithin(t *testing.T, d time.Duration, h Hook) (Result, time.Duration) {
	t.Helper()
	r := NewRunner(testReaper, zap.NewNop(), nil, nil, "")
	var res Result
	took := proctest.Within(t, d, func() { res = r.Run(context.Background(), h) })
	return res, took
}
