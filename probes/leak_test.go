package probes

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestNoGoroutineLeaks runs every kind of check that can hang through WaitAll
// and a Prober, stops them, and expects the goroutine count to come back: an
// attempt cut by its deadline must leave nothing behind.
func TestNoGoroutineLeaks(t *testing.T) {
	hanging := silentListener(t)
	srv := newScriptedServer(t, always(http.StatusOK))
	targets := []Target{
		mustParse(t, "tcp://"+closedPort(t)),
		mustParse(t, "http://"+hanging+"/"),
		mustParse(t, "grpc://"+hanging),
		mustParse(t, "exec:sleep 100"),
		mustParse(t, "file:///nonexistent/lifecycled"),
	}
	before := runtime.NumGoroutine()

	err := WaitAll(context.Background(), targets, WaitConfig{MaxInterval: 50 * time.Millisecond, Timeout: 300 * time.Millisecond})
	assert.Error(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	p := NewProber(ProbeSpec{Target: mustParse(t, srv.URL+"/"), Period: 10 * time.Millisecond}, testOptions, nil, nil, nil)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	assert.Eventually(t, func() bool { ready, _ := p.state(); return ready }, 5*time.Second, 10*time.Millisecond)
	cancel()
	<-done

	// Polled by hand: assert.Eventually runs its condition in goroutines of
	// its own, which would be counted.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); !assert.LessOrEqual(t, after, before, "goroutines leaked") {
		buf := make([]byte, 1<<20)
		t.Logf("%s", buf[:runtime.Stack(buf, true)])
	}
}
