package probes

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lifecycled/lifecycled/internal/promtest"
)

func TestWaitAllLateDependency(t *testing.T) {
	addr := closedPort(t)
	readyFile := filepath.Join(t.TempDir(), "ready")
	require.NoError(t, os.WriteFile(readyFile, nil, 0o600))
	late := mustParse(t, "tcp://"+addr)
	present := mustParse(t, "file://"+readyFile)

	const appearAfter = 300 * time.Millisecond
	listening := make(chan net.Listener, 1)
	timer := time.AfterFunc(appearAfter, func() {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			listening <- nil
			return
		}
		listening <- l
	})
	t.Cleanup(func() {
		timer.Stop()
		select {
		case l := <-listening:
			if l != nil {
				_ = l.Close()
			}
		default:
		}
	})

	reg := prometheus.NewRegistry()
	start := time.Now()
	err := WaitAll(timeoutCtx(t, 30*time.Second), []Target{late, present}, WaitConfig{
		MaxInterval: 100 * time.Millisecond,
		Timeout:     20 * time.Second,
		Metrics:     NewMetrics(reg),
		Options:     testOptions,
	})
	elapsed := time.Since(start)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, elapsed, appearAfter, "up before the listener existed")
	// Backoff is capped at 100ms: a generous bound for a slow machine.
	assert.Less(t, elapsed, appearAfter+2*time.Second)

	assert.Equal(t, 1.0, promtest.Value(t, reg, "lifecycled_dependency_up", map[string]string{"target": late.String()}))
	assert.Equal(t, 1.0, promtest.Value(t, reg, "lifecycled_dependency_up", map[string]string{"target": present.String()}))
	waited := promtest.Value(t, reg, "lifecycled_dependency_wait_seconds", map[string]string{"target": late.String()})
	assert.GreaterOrEqual(t, waited, appearAfter.Seconds())
	assert.LessOrEqual(t, waited, elapsed.Seconds())
	assert.Less(t, promtest.Value(t, reg, "lifecycled_dependency_wait_seconds", map[string]string{"target": present.String()}), 0.3)
}

func TestWaitAllTimeout(t *testing.T) {
	readyFile := filepath.Join(t.TempDir(), "ready")
	require.NoError(t, os.WriteFile(readyFile, nil, 0o600))
	never := mustParse(t, "tcp://"+closedPort(t))
	hangs := mustParse(t, "http://"+silentListener(t)+"/")
	present := mustParse(t, "file://"+readyFile)

	reg := prometheus.NewRegistry()
	const timeout = 500 * time.Millisecond
	start := time.Now()
	err := WaitAll(timeoutCtx(t, 30*time.Second), []Target{never, present, hangs}, WaitConfig{
		MaxInterval: 100 * time.Millisecond,
		Timeout:     timeout,
		Metrics:     NewMetrics(reg),
	})
	elapsed := time.Since(start)

	var notUp *NotUpError
	require.ErrorAs(t, err, &notUp)
	assert.Equal(t, []string{never.String(), hangs.String()}, notUp.Targets)
	assert.Contains(t, notUp.Last[never.String()], "connection refused")
	assert.Contains(t, notUp.Last[hangs.String()], "deadline exceeded")
	assert.NotContains(t, notUp.Last, present.String())
	msg := err.Error()
	assert.Contains(t, msg, never.String())
	assert.Contains(t, msg, hangs.String())
	assert.NotContains(t, msg, present.String())
	assert.NotContains(t, msg, "\n")
	assert.GreaterOrEqual(t, elapsed, timeout)
	assert.Less(t, elapsed, timeout+2*time.Second)

	assert.Equal(t, 0.0, promtest.Value(t, reg, "lifecycled_dependency_up", map[string]string{"target": never.String()}))
	assert.Equal(t, 1.0, promtest.Value(t, reg, "lifecycled_dependency_up", map[string]string{"target": present.String()}))
	assert.Greater(t, promtest.Value(t, reg, "lifecycled_dependency_wait_seconds", map[string]string{"target": never.String()}), 0.2)
}

func TestWaitAllCancel(t *testing.T) {
	// One target refuses, the other hangs: cancelling must stop the attempt
	// in flight too, not wait for its own timeout.
	targets := []Target{
		mustParse(t, "tcp://"+closedPort(t)),
		mustParse(t, "http://"+silentListener(t)+"/"),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const cancelAfter = 200 * time.Millisecond
	// start before the timer: the cancel comes cancelAfter after the timer
	// is set, which a busy machine may leave well after a later start.
	start := time.Now()
	time.AfterFunc(cancelAfter, cancel)

	err := WaitAll(ctx, targets, WaitConfig{MaxInterval: 10 * time.Second}) // no Timeout
	elapsed := time.Since(start)
	assert.ErrorIs(t, err, context.Canceled)
	var notUp *NotUpError
	assert.False(t, errors.As(err, &notUp), "a cancel is not a timeout")
	assert.GreaterOrEqual(t, elapsed, cancelAfter)
	assert.Less(t, elapsed, cancelAfter+time.Second)
}

func TestWaitAllNothing(t *testing.T) {
	assert.NoError(t, WaitAll(timeoutCtx(t, time.Second), nil, WaitConfig{}))
}

func TestWaitAllProgressLog(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	never := mustParse(t, "tcp://"+closedPort(t))
	const (
		every   = 100 * time.Millisecond
		timeout = 550 * time.Millisecond
	)
	err := WaitAll(timeoutCtx(t, 30*time.Second), []Target{never}, WaitConfig{
		MaxInterval:   20 * time.Millisecond,
		Timeout:       timeout,
		ProgressEvery: every,
		Logger:        zap.New(core),
	})
	require.Error(t, err)

	progress := logs.FilterMessage("waiting for dependency").All()
	// Attempts run every 20ms, yet progress is logged at most every 100ms.
	assert.GreaterOrEqual(t, len(progress), 1)
	assert.LessOrEqual(t, len(progress), int(timeout/every))
	for i, entry := range progress {
		fields := entry.ContextMap()
		assert.Equal(t, never.String(), fields["target"])
		assert.Contains(t, fields["error"], "connection refused")
		attempt, ok := fields["attempt"].(int64)
		require.True(t, ok, "attempt field: %#v", fields["attempt"])
		assert.Greater(t, attempt, int64(1), "first progress line before ProgressEvery")
		if i > 0 {
			// Less a little: the entry's time is taken just after the limiter's.
			assert.GreaterOrEqual(t, entry.Time.Sub(progress[i-1].Time), every-10*time.Millisecond)
		}
	}
}

// TestWaitAllSchedule checks the cost side of the schedule on real targets
// at the default --wait-interval: a refused port is checked often (its
// kernel answers), an HTTP server that answers 503 is backed off per attempt
// (it does the work of every check).
func TestWaitAllSchedule(t *testing.T) {
	var answered atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		answered.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	refusing := mustParse(t, "tcp://"+closedPort(t))
	busy := mustParse(t, srv.URL+"/healthz")

	core, logs := observer.New(zapcore.DebugLevel)
	const window = 2 * time.Second
	err := WaitAll(timeoutCtx(t, 30*time.Second), []Target{refusing, busy}, WaitConfig{
		Timeout: window,
		Logger:  zap.New(core),
	})
	var notUp *NotUpError
	require.ErrorAs(t, err, &notUp)

	refused := int64(0)
	for _, e := range logs.FilterMessage("dependency not up").All() {
		if e.ContextMap()["target"] == refusing.String() {
			refused++
		}
	}
	// 50 ms pauses (less jitter) doubling over 2 s: about 30 checks; the
	// per-attempt doubling of the 503s would allow 6.
	assert.GreaterOrEqual(t, refused, int64(15), "refused port checked too rarely")
	assert.LessOrEqual(t, refused, int64(45), "refused port checked too often")
	// 0, 50, 150, 350, 750, 1550 ms: 6 requests, 7 at most with jitter.
	assert.GreaterOrEqual(t, answered.Load(), int64(4))
	assert.LessOrEqual(t, answered.Load(), int64(7), "a server answering 503 must be backed off per attempt")
}

func TestRefusedPause(t *testing.T) {
	tests := []struct {
		waited, max, want time.Duration
	}{
		{0, time.Second, 50 * time.Millisecond},
		{2 * time.Second, time.Second, 100 * time.Millisecond},
		{4 * time.Second, time.Second, 200 * time.Millisecond},
		{8 * time.Second, time.Second, 800 * time.Millisecond},
		{9 * time.Second, time.Second, time.Second},
		{time.Hour, time.Second, time.Second},
		{0, 20 * time.Millisecond, 20 * time.Millisecond},
		{time.Hour, time.Minute, time.Minute},
	}
	for _, tt := range tests {
		got := refusedPause(tt.waited, tt.max)
		assert.InDelta(t, float64(tt.want), float64(got), float64(time.Millisecond), "waited %s, max %s", tt.waited, tt.max)
	}
	for range 1000 {
		d := jitter(time.Second)
		require.LessOrEqual(t, d, time.Second)
		require.GreaterOrEqual(t, d, 750*time.Millisecond)
	}
}
