package lbsim

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/proctest"
)

// testBackend is an HTTP server that answers its name and whose readiness
// the test sets.
type testBackend struct {
	*httptest.Server
	ready atomic.Bool
}

func newTestBackend(t *testing.T, name string) *testBackend {
	t.Helper()
	b := &testBackend{}
	b.ready.Store(true)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ready" && !b.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *testBackend) backend(name string) Backend {
	addr := strings.TrimPrefix(b.URL, "http://")
	return Backend{Name: name, Addr: addr, ReadyURL: b.URL + "/ready"}
}

// startBalancer runs a Balancer until the test ends.
func startBalancer(t *testing.T, opts BalancerOptions, backends ...Backend) *Balancer {
	t.Helper()
	lb, err := NewBalancer(backends, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lb.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	names := make([]string, len(backends))
	for i, b := range backends {
		names[i] = b.Name
	}
	require.NoError(t, lb.WaitInRotation(wctx, names...))
	return lb
}

// get sends one request with client and returns the body: the backend's
// name.
func get(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// TestBalancerDropsAfterPropagation: a backend that turns unready keeps
// getting new connections until the propagation delay has passed, then
// none; a kept-alive connection already on it stays there, as a conntrack
// entry does.
func TestBalancerDropsAfterPropagation(t *testing.T) {
	const propagation = 300 * time.Millisecond
	a, b := newTestBackend(t, "a"), newTestBackend(t, "b")
	lb := startBalancer(t, BalancerOptions{PollInterval: 20 * time.Millisecond, Propagation: propagation},
		a.backend("a"), b.backend("b"))

	fresh := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	seen := map[string]int{}
	for range 10 {
		seen[get(t, fresh, lb.URL("/"))]++
	}
	assert.Equal(t, map[string]int{"a": 5, "b": 5}, seen, "new connections go round robin")

	kept := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}
	defer kept.CloseIdleConnections()
	pinned := get(t, kept, lb.URL("/"))
	for range 5 {
		require.Equal(t, pinned, get(t, kept, lb.URL("/")), "a kept-alive connection stays on its backend")
	}
	dropped, other := a, "b"
	if pinned == "b" {
		dropped, other = b, "a"
	}

	dropped.ready.Store(false)
	for _, s := range lb.Stats() {
		assert.True(t, s.InRotation, "%s is still in rotation right after its readiness failed", s.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var drop Event
	require.NoError(t, proctest.Poll(ctx, 5*time.Millisecond, func() bool {
		for _, e := range lb.Events() {
			if !e.Ready {
				drop = e
				return true
			}
		}
		return false
	}), "the backend is dropped")
	assert.Equal(t, pinned, drop.Backend)
	assert.Equal(t, propagation, drop.Applied.Sub(drop.Seen), "dropped exactly the propagation delay after the poll saw it")

	for range 6 {
		assert.Equal(t, other, get(t, fresh, lb.URL("/")), "new connections avoid the dropped backend")
	}
	assert.Equal(t, pinned, get(t, kept, lb.URL("/")), "the kept-alive connection still goes to the dropped backend")
}

// TestBalancerFlapIsNotPropagated: a readiness failure shorter than the
// propagation delay never takes the backend out.
func TestBalancerFlapIsNotPropagated(t *testing.T) {
	a := newTestBackend(t, "a")
	lb := startBalancer(t, BalancerOptions{PollInterval: 20 * time.Millisecond, Propagation: time.Second}, a.backend("a"))
	a.ready.Store(false)
	time.Sleep(200 * time.Millisecond)
	a.ready.Store(true)
	time.Sleep(200 * time.Millisecond)
	assert.True(t, lb.Stats()[0].InRotation)
	assert.Len(t, lb.Events(), 1, "only the initial entry into the rotation: %+v", lb.Events())
}

// TestBalancerRefusesClosedBackend: a new connection routed to a backend
// that does not listen fails for the client, as iptables' reset would.
func TestBalancerRefusesClosedBackend(t *testing.T) {
	a := newTestBackend(t, "a")
	// The backend stays in rotation for the propagation delay after it
	// stops answering: far longer than the request takes.
	lb := startBalancer(t, BalancerOptions{PollInterval: 20 * time.Millisecond, Propagation: time.Second}, a.backend("a"))
	a.Close()
	fresh := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	_, err := fresh.Get(lb.URL("/"))
	require.Error(t, err)
	assert.Contains(t, []string{FailReset, FailEOF}, failKind(err), "%v", err)
	assert.Equal(t, int64(1), lb.Stats()[0].DialErrors)
}

// TestBalancerTimeoutsNeedThreshold: polls that time out take a backend out
// only once MaxTimeouts of them came in a row; the event says why.
func TestBalancerTimeoutsNeedThreshold(t *testing.T) {
	var hang atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			<-r.Context().Done() // the poll gave up
		}
	}))
	defer srv.Close()
	be := Backend{Name: "a", Addr: strings.TrimPrefix(srv.URL, "http://"), ReadyURL: srv.URL}
	lb := startBalancer(t, BalancerOptions{
		PollInterval: 10 * time.Millisecond, PollTimeout: 50 * time.Millisecond, MaxTimeouts: 3,
		Propagation: 10 * time.Millisecond,
	}, be)

	hang.Store(true)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, proctest.Poll(ctx, 5*time.Millisecond, func() bool { return !lb.Stats()[0].InRotation }))
	assert.GreaterOrEqual(t, time.Since(start), 3*50*time.Millisecond, "three timeouts before the backend counts as not ready")
	events := lb.Events()
	require.Len(t, events, 2)
	assert.Contains(t, events[1].Reason, "3 polls in a row timed out")
}

func TestNewBalancerRefusesNonLoopback(t *testing.T) {
	_, err := NewBalancer([]Backend{{Name: "x", Addr: "192.0.2.1:80", ReadyURL: "http://192.0.2.1/"}}, BalancerOptions{})
	assert.ErrorContains(t, err, "not a loopback")
}
