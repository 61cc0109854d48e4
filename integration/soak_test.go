package integration

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// soakDuration is how long TestSoak runs: LIFECYCLED_SOAK (a Go duration),
// 20s by default so that CI runs it on every change. The long run is
//
//	LIFECYCLED_SOAK=1h go test -timeout 2h -run Soak ./integration/
//
// (-timeout: go test stops any test binary after 10 minutes by default).
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("LIFECYCLED_SOAK")
	if v == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "LIFECYCLED_SOAK")
	require.GreaterOrEqual(t, d, 10*time.Second, "LIFECYCLED_SOAK: at least 10s, or there is nothing to compare")
	return d
}

// soakSample is one look at lifecycled's resources.
type soakSample struct {
	at         time.Duration // since the load started
	rssKiB     int
	threads    int
	fds        int
	goroutines int
}

// TestSoak runs lifecycled under steady load for LIFECYCLED_SOAK and checks
// that nothing it holds grows: its resident memory, its goroutines and its
// open file descriptors over the last third of the run are those of the
// first third. The load, on two lifecycled at once (one with an HTTP
// readiness probe, one with an exec probe, so both kinds of check and the
// reaper's command path run all along): a readiness probe every 100 ms
// (its target fails one time in ten), /metrics scraped and /readyz polled
// every 100 ms, SIGUSR1 to the child every 500 ms (each delivered exactly
// once), a sample every second. LIFECYCLED_SOAK_OUT=DIR writes the samples
// there as CSV.
func TestSoak(t *testing.T) {
	d := soakDuration(t)
	var hits atomic.Int64
	target := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hits.Add(1)%10 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = target.Serve(ln) }()
	t.Cleanup(func() { _ = target.Close() })

	for _, tc := range []struct{ name, ready string }{
		{"http probe", "http://" + ln.Addr().String() + "/"},
		// Fails one time in ten, as the HTTP target does.
		{"exec probe", `exec:[ $(( $$ % 10 )) -ne 0 ]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			soak(t, d, tc.name, tc.ready)
		})
	}
}

func soak(t *testing.T, d time.Duration, name, ready string) {
	ctx := testContext(t, d+2*time.Minute)
	dir := t.TempDir()
	addr := listenAddr(t)
	p := start(t, options{}, append([]string{"--listen", addr, "--ready", ready, "--ready-period", "100ms",
		"--ready-failure-threshold", "3", "--"}, recorder(t, dir)...)...)
	require.NotNil(t, p)
	require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
	_, err := waitStatus(ctx, "http://"+addr+"/readyz", http.StatusOK)
	require.NoError(t, err)
	pid, err := p.lifecycledPid(ctx)
	require.NoError(t, err)

	loadCtx, stopLoad := context.WithTimeout(ctx, d)
	defer stopLoad()
	began := time.Now()
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		samples   []soakSample
		failures  []string // of the load itself: it must all succeed
		usr1Sent  int
		scrapes   atomic.Int64
		readyzOK  atomic.Int64
		readyzBad atomic.Int64
	)
	failed := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	every := func(period time.Duration, f func()) {
		wg.Go(func() {
			tick := time.NewTicker(period)
			defer tick.Stop()
			for {
				select {
				case <-loadCtx.Done():
					return
				case <-tick.C:
					f()
				}
			}
		})
	}
	every(100*time.Millisecond, func() {
		if code, _, err := fetch(loadCtx, http.MethodGet, "http://"+addr+"/metrics"); err != nil || code != http.StatusOK {
			if loadCtx.Err() == nil {
				failed("GET /metrics: %d %v", code, err)
			}
			return
		}
		scrapes.Add(1)
	})
	every(100*time.Millisecond, func() {
		code, _, err := fetch(loadCtx, http.MethodGet, "http://"+addr+"/readyz")
		switch {
		case err != nil:
			if loadCtx.Err() == nil {
				failed("GET /readyz: %v", err)
			}
		case code == http.StatusOK:
			readyzOK.Add(1)
		case code == http.StatusServiceUnavailable:
			readyzBad.Add(1)
		default:
			failed("GET /readyz: status %d", code)
		}
	})
	every(500*time.Millisecond, func() {
		if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
			failed("SIGUSR1: %v", err)
			return
		}
		mu.Lock()
		usr1Sent++
		mu.Unlock()
	})
	every(time.Second, func() {
		s, err := sampleProcess(loadCtx, pid, addr)
		if err != nil {
			if loadCtx.Err() == nil {
				failed("sample: %v", err)
			}
			return
		}
		s.at = time.Since(began)
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
	})
	<-loadCtx.Done()
	wg.Wait()

	_, err = waitSignals(ctx, dir, usr1Sent)
	assert.NoError(t, err)
	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	r := p.wait(ctx)
	assert.Equal(t, 143, r.code, "stderr: %s", lastLines(r.stderr, 20))
	assert.Empty(t, failures, "the load failed")
	got := countSignals(readSignals(dir))
	assert.Equal(t, usr1Sent, got[int(syscall.SIGUSR1)], "SIGUSR1 every 500 ms: each delivered exactly once")
	assert.Positive(t, readyzOK.Load())

	writeSamples(t, name, samples)
	checkFlat(t, name, samples, d)
	t.Logf("FIGURE soak (%s, %s): %d scrapes of /metrics, /readyz %d×200 %d×503, %d SIGUSR1 sent and delivered",
		name, d, scrapes.Load(), readyzOK.Load(), readyzBad.Load(), usr1Sent)
}

// sampleProcess reads pid's resident memory, threads and open file
// descriptors from /proc, and its goroutines from /metrics.
func sampleProcess(ctx context.Context, pid int, addr string) (soakSample, error) {
	var s soakSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, l := range lines(string(status)) {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			s.rssKiB, _ = strconv.Atoi(f[1])
		case "Threads:":
			s.threads, _ = strconv.Atoi(f[1])
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	g, err := scrapeMetric(ctx, addr, "go_goroutines")
	if err != nil {
		return s, err
	}
	s.goroutines = int(g)
	return s, nil
}

// checkFlat compares the last third of the run with the first third, after
// a warm-up (the first tenth, at least 3 s: heap and connection pools
// settle): goroutines and file descriptors may not grow by more than a few
// (the requests and probes in flight at the moment of a sample), resident
// memory by no more than 20% and 2 MiB (the garbage collector's sawtooth).
// A leak of one goroutine or descriptor per probe, scrape or signal adds
// dozens even in the 20 s of CI.
func checkFlat(t *testing.T, name string, samples []soakSample, d time.Duration) {
	t.Helper()
	warmup := max(d/10, 3*time.Second)
	var steady []soakSample
	for _, s := range samples {
		if s.at >= warmup {
			steady = append(steady, s)
		}
	}
	require.GreaterOrEqual(t, len(steady), 6, "too few samples: %d", len(steady))
	third := len(steady) / 3
	first, last := steady[:third], steady[len(steady)-third:]
	stat := func(ss []soakSample, f func(soakSample) int) (mean float64, hi int) {
		for _, s := range ss {
			mean += float64(f(s))
			hi = max(hi, f(s))
		}
		return mean / float64(len(ss)), hi
	}
	rss := func(s soakSample) int { return s.rssKiB }
	gor := func(s soakSample) int { return s.goroutines }
	fds := func(s soakSample) int { return s.fds }
	thr := func(s soakSample) int { return s.threads }

	rss1, _ := stat(first, rss)
	rss2, _ := stat(last, rss)
	g1, gHi1 := stat(first, gor)
	g2, gHi2 := stat(last, gor)
	f1, fHi1 := stat(first, fds)
	f2, fHi2 := stat(last, fds)
	th1, _ := stat(first, thr)
	th2, _ := stat(last, thr)
	assert.LessOrEqual(t, rss2, rss1*1.2+2048, "resident memory grew: %.0f KiB → %.0f KiB", rss1, rss2)
	assert.LessOrEqual(t, gHi2, gHi1+5, "goroutines grew: max %d → %d", gHi1, gHi2)
	assert.LessOrEqual(t, fHi2, fHi1+4, "file descriptors grew: max %d → %d", fHi1, fHi2)

	slope := "" // over a short run the garbage collector's sawtooth is all a slope would show
	if d >= 5*time.Minute {
		slope = fmt.Sprintf(", trend %+.2f MiB/h", trend(steady, rss)/1024)
	}
	t.Logf("FIGURE soak (%s, %s, %d samples after %s warm-up; first third → last third): RSS %.1f → %.1f MiB (%+.1f%%%s), "+
		"goroutines %.1f → %.1f (max %d → %d), fds %.1f → %.1f (max %d → %d), threads %.1f → %.1f",
		name, d, len(steady), warmup, rss1/1024, rss2/1024, 100*(rss2-rss1)/rss1, slope,
		g1, g2, gHi1, gHi2, f1, f2, fHi1, fHi2, th1, th2)
}

// trend is the least-squares slope of f over the samples, per hour.
func trend(ss []soakSample, f func(soakSample) int) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, s := range ss {
		x, y := s.at.Hours(), float64(f(s))
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	den := n*sxx - sx*sx
	if den == 0 || math.IsNaN(den) {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// writeSamples writes the samples as CSV to $LIFECYCLED_SOAK_OUT/NAME.csv,
// if set.
func writeSamples(t *testing.T, name string, samples []soakSample) {
	t.Helper()
	dir := os.Getenv("LIFECYCLED_SOAK_OUT")
	if dir == "" {
		return
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".csv"))
	require.NoError(t, err)
	defer f.Close()
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "seconds,rss_kib,goroutines,fds,threads")
	for _, s := range samples {
		fmt.Fprintf(w, "%.1f,%d,%d,%d,%d\n", s.at.Seconds(), s.rssKiB, s.goroutines, s.fds, s.threads)
	}
	require.NoError(t, w.Flush())
}

// lastLines is the end of a long output, for failure messages.
func lastLines(s string, n int) string {
	l := lines(s)
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
