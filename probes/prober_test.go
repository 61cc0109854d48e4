package probes

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/promtest"
)

// scriptedServer answers each request with the next behaviour of a script
// that the test may change at any time: a status code, or hang (0) until the
// request is abandoned.
type scriptedServer struct {
	*httptest.Server

	mu       sync.Mutex
	hits     int
	behavior func(hit int) int // the hit'th request (from 1) → status, 0 = hang
}

func newScriptedServer(t *testing.T, behavior func(hit int) int) *scriptedServer {
	t.Helper()
	s := &scriptedServer{behavior: behavior}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits++
		code := s.behavior(s.hits)
		s.mu.Unlock()
		if code == 0 {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scriptedServer) Hits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

// setBehavior changes the answers from now on.
func (s *scriptedServer) setBehavior(behavior func(hit int) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behavior = behavior
}

func always(code int) func(int) int { return func(int) int { return code } }

// change is one onChange call, with the server's hit count when it happened.
type change struct {
	ready  bool
	reason string
	hits   int
}

// runProber runs a Prober on srv until the test ends, recording its changes
// and, in onChange's goroutine, running react (may be nil) on each.
func runProber(t *testing.T, srv *scriptedServer, spec ProbeSpec, m *Metrics, react func(change)) (*Prober, <-chan change) {
	t.Helper()
	changes := make(chan change, 100)
	spec.Target = mustParse(t, srv.URL+"/ready")
	p := NewProber(spec, testOptions, nil, m, func(ready bool, reason string) {
		c := change{ready: ready, reason: reason, hits: srv.Hits()}
		if react != nil {
			react(c)
		}
		changes <- c
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(5 * time.Second):
			assert.Fail(t, "Run did not return after cancel")
		}
	})
	return p, changes
}

// nextReadyChange returns the next change of readiness, skipping changes of
// reason only, or fails the test after a generous wait.
func nextReadyChange(t *testing.T, changes <-chan change, ready bool) change {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c := <-changes:
			if c.ready == ready {
				return c
			}
		case <-timeout:
			require.Failf(t, "no readiness change", "want ready=%v", ready)
		}
	}
}

func TestProberSuccessThreshold(t *testing.T) {
	srv := newScriptedServer(t, always(http.StatusOK))
	p, changes := runProber(t, srv, ProbeSpec{Period: 20 * time.Millisecond, SuccessThreshold: 3}, nil, nil)

	first := <-changes
	assert.False(t, first.ready, "ready before any probe")
	c := nextReadyChange(t, changes, true)
	// onChange runs in Run's goroutine, so no probe is in flight: the count
	// is exact.
	assert.Equal(t, 3, c.hits, "ready after other than 3 successes")
	ready, reason := p.state()
	assert.True(t, ready)
	assert.Empty(t, reason)
}

func TestProberFailureThreshold(t *testing.T) {
	srv := newScriptedServer(t, always(http.StatusOK))
	var failedFrom int
	reg := prometheus.NewRegistry()
	p, changes := runProber(t, srv, ProbeSpec{Period: 20 * time.Millisecond, FailureThreshold: 3}, NewMetrics(reg),
		func(c change) {
			if c.ready {
				failedFrom = c.hits // from here on the server fails
				srv.setBehavior(always(http.StatusInternalServerError))
			}
		})

	up := nextReadyChange(t, changes, true)
	assert.Equal(t, 1, up.hits, "SuccessThreshold defaults to 1")
	down := nextReadyChange(t, changes, false)
	assert.Equal(t, 3, down.hits-failedFrom, "not ready after other than 3 failures")
	assert.Contains(t, down.reason, "status 500")
	ready, reason := p.state()
	assert.False(t, ready)
	assert.Contains(t, reason, "status 500")

	assert.Equal(t, 1.0, promtest.Value(t, reg, "lifecycled_probe_total", map[string]string{"result": "success"}))
	assert.GreaterOrEqual(t, promtest.Value(t, reg, "lifecycled_probe_total", map[string]string{"result": "failure"}), 3.0)
}

func TestProberFailuresBelowThreshold(t *testing.T) {
	// OK, then two failures and an OK, over and over: never three failures in
	// a row, so once ready, always ready.
	srv := newScriptedServer(t, func(hit int) int {
		if hit%3 == 1 {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	_, changes := runProber(t, srv, ProbeSpec{Period: 20 * time.Millisecond, FailureThreshold: 3}, nil, nil)

	nextReadyChange(t, changes, true)
	require.Eventually(t, func() bool { return srv.Hits() >= 15 }, 10*time.Second, 10*time.Millisecond)
	for {
		select {
		case c := <-changes:
			assert.True(t, c.ready, "not ready after %d hits: %s", c.hits, c.reason)
			continue
		default:
		}
		break
	}
}

func TestProberTimeoutIsFailure(t *testing.T) {
	srv := newScriptedServer(t, always(http.StatusOK))
	var failedFrom int
	reg := prometheus.NewRegistry()
	_, changes := runProber(t, srv, ProbeSpec{
		Period:           20 * time.Millisecond,
		Timeout:          50 * time.Millisecond,
		FailureThreshold: 2,
	}, NewMetrics(reg), func(c change) {
		if c.ready {
			failedFrom = c.hits
			srv.setBehavior(always(0)) // hang
		}
	})

	nextReadyChange(t, changes, true)
	start := time.Now()
	down := nextReadyChange(t, changes, false)
	assert.Equal(t, 2, down.hits-failedFrom)
	assert.Contains(t, down.reason, "timed out after 50ms")
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.GreaterOrEqual(t, promtest.Value(t, reg, "lifecycled_probe_total", map[string]string{"result": "failure"}), 2.0)
}

func TestProberInitialDelay(t *testing.T) {
	srv := newScriptedServer(t, always(http.StatusOK))
	const delay = 300 * time.Millisecond
	start := time.Now()
	p, changes := runProber(t, srv, ProbeSpec{Period: 20 * time.Millisecond, InitialDelay: delay}, nil, nil)

	first := <-changes
	assert.False(t, first.ready)
	assert.Contains(t, first.reason, "initial delay")
	ready, _ := p.state()
	assert.False(t, ready)

	up := nextReadyChange(t, changes, true)
	assert.GreaterOrEqual(t, time.Since(start), delay)
	assert.Equal(t, 1, up.hits, "probed during the initial delay")
}

func TestProberStopsPromptly(t *testing.T) {
	// A probe in flight against a hanging server must not hold Run past the
	// cancel, whatever its own timeout.
	srv := newScriptedServer(t, always(0))
	p := NewProber(ProbeSpec{Target: mustParse(t, srv.URL+"/"), Period: 20 * time.Millisecond, Timeout: time.Minute},
		testOptions, nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	require.Eventually(t, func() bool { return srv.Hits() >= 1 }, 5*time.Second, 5*time.Millisecond)

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		require.Fail(t, "Run did not return after cancel (its probe has a minute of timeout)")
	}
	ready, _ := p.state()
	assert.False(t, ready)
}

// TestProberLiveness: a liveness probe passes from the start, through its
// initial delay and through failures under the threshold, as the kubelet's.
func TestProberLiveness(t *testing.T) {
	srv := newScriptedServer(t, always(http.StatusInternalServerError))
	p, changes := runProber(t, srv, ProbeSpec{Period: 20 * time.Millisecond, FailureThreshold: 3, Liveness: true}, nil, nil)

	first := <-changes
	assert.True(t, first.ready, "a liveness probe passes before its first probe")
	assert.Empty(t, first.reason)
	c := nextReadyChange(t, changes, false)
	assert.Equal(t, 3, c.hits, "failing after other than 3 failures")
	assert.Contains(t, c.reason, "500")

	srv.setBehavior(always(http.StatusOK))
	c = nextReadyChange(t, changes, true)
	ready, _ := p.state()
	assert.True(t, ready)
}
