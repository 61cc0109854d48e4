package lbsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Bounds of a Load, so that a mistake cannot flood the machine.
const (
	MaxRate        = 5000 // requests per second, all workers together
	MaxWorkers     = 256
	MaxLoadTime    = 5 * time.Minute
	DefaultTimeout = 5 * time.Second
	maxFailTimes   = 10000
	maxSamples     = 5
)

// Kinds of failed requests, the keys of LoadResult.ByKind.
const (
	FailRefused = "refused" // connection refused
	FailReset   = "reset"   // connection reset by peer, broken pipe
	FailEOF     = "eof"     // the connection closed before a response
	FailTimeout = "timeout" // no response within Load.Timeout
	FailStatus  = "status"  // a response other than 200
	FailOther   = "other"
)

// Load is a load generator of GET requests to a loopback URL at a fixed
// total rate: KeepAliveWorkers each keep one connection open across their
// requests (a browser), NewConnWorkers open a connection per request (a
// script, a health checker), PooledWorkers share one http.Client with Go's
// default pool (a service calling another: at most 2 idle connections
// kept, more opened when requests overlap), H2Workers share one HTTP/2
// connection (h2c with prior knowledge: a gRPC or HTTP/2 client, every
// request a stream on it). Each worker sends Rate/workers requests per
// second, one at a time; a worker whose request runs late skips ahead
// rather than bursts.
type Load struct {
	// URL is the target; its host must be a loopback IP address.
	URL              string
	KeepAliveWorkers int
	NewConnWorkers   int
	PooledWorkers    int
	H2Workers        int
	// Rate is the total number of requests per second.
	Rate float64
	// Duration bounds the run (at most MaxLoadTime); cancelling Run's
	// context ends it earlier.
	Duration time.Duration
	// Timeout bounds each request (DefaultTimeout if zero).
	Timeout time.Duration
}

// LoadResult counts what the requests got.
type LoadResult struct {
	OK, Failed int64
	// ByKind counts the failures by kind (the Fail constants).
	ByKind map[string]int64
	// Samples holds the first few failures' errors.
	Samples []string
	// FailTimes are when failed requests ended (the first 10000).
	FailTimes []time.Time
	// Start and End bound the run.
	Start, End time.Time
}

// String is a one-line summary: ok=N failed=N (kind=N ...).
func (r LoadResult) String() string {
	kinds := make([]string, 0, len(r.ByKind))
	for k, n := range r.ByKind {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	s := fmt.Sprintf("ok=%d failed=%d", r.OK, r.Failed)
	if len(kinds) > 0 {
		s += " (" + strings.Join(kinds, " ") + ")"
	}
	return s
}

// Run sends the load until Duration has passed or ctx ends. Stopping never
// fails a request: requests in flight are given their full Timeout.
func (l Load) Run(ctx context.Context) (LoadResult, error) {
	if err := l.check(); err != nil {
		return LoadResult{}, err
	}
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	workers := l.workers()
	interval := time.Duration(float64(workers) / l.Rate * float64(time.Second))

	ctx, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	rec := &recorder{byKind: map[string]int64{}}
	start := time.Now()
	// The shared pools: Go's defaults, with no proxy from the environment.
	pooled := http.DefaultTransport.(*http.Transport).Clone()
	pooled.Proxy = nil
	h2 := pooled.Clone()
	h2.Protocols = new(http.Protocols)
	h2.Protocols.SetUnencryptedHTTP2(true)
	defer pooled.CloseIdleConnections()
	defer h2.CloseIdleConnections()
	var wg sync.WaitGroup
	for i := range workers {
		var transport *http.Transport
		switch {
		case i < l.KeepAliveWorkers+l.NewConnWorkers:
			transport = &http.Transport{
				Proxy:               nil,
				DialContext:         (&net.Dialer{Timeout: timeout}).DialContext,
				DisableKeepAlives:   i >= l.KeepAliveWorkers,
				MaxIdleConnsPerHost: 1,
				DisableCompression:  true,
			}
		case i < l.KeepAliveWorkers+l.NewConnWorkers+l.PooledWorkers:
			transport = pooled
		default:
			transport = h2
		}
		client := &http.Client{Transport: transport}
		// Spread the workers' first requests over one interval.
		first := start.Add(interval * time.Duration(i) / time.Duration(workers))
		wg.Go(func() {
			defer transport.CloseIdleConnections()
			l.work(ctx, client, first, interval, timeout, rec)
		})
	}
	wg.Wait()
	return rec.result(start, time.Now()), nil
}

func (l Load) workers() int {
	return l.KeepAliveWorkers + l.NewConnWorkers + l.PooledWorkers + l.H2Workers
}

func (l Load) check() error {
	u, err := url.Parse(l.URL)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("load: %s: only http:// URLs", l.URL)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("load: %s: host must be a loopback IP address", l.URL)
	}
	workers := l.workers()
	switch {
	case l.KeepAliveWorkers < 0 || l.NewConnWorkers < 0 || l.PooledWorkers < 0 || l.H2Workers < 0 || workers == 0 || workers > MaxWorkers:
		return fmt.Errorf("load: %d workers: want 1-%d", workers, MaxWorkers)
	case l.Rate <= 0 || l.Rate > MaxRate:
		return fmt.Errorf("load: rate %g: want more than 0, at most %d per second", l.Rate, MaxRate)
	case l.Duration <= 0 || l.Duration > MaxLoadTime:
		return fmt.Errorf("load: duration %s: want more than 0, at most %s", l.Duration, MaxLoadTime)
	}
	return nil
}

// work is one worker: a request at every tick, one at a time.
func (l Load) work(ctx context.Context, client *http.Client, next time.Time, interval, timeout time.Duration, rec *recorder) {
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		rec.add(l.get(ctx, client, timeout))
		if ctx.Err() != nil {
			return // or select might pick a due tick over the stop
		}
		next = next.Add(interval)
		if now := time.Now(); next.Before(now) {
			next = now // late: skip ahead, do not burst
		}
		timer.Reset(time.Until(next))
	}
}

// get sends one request. Its context is not cancelled with ctx: stopping
// the load lets the last requests finish.
func (l Load) get(ctx context.Context, client *http.Client, timeout time.Duration) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, l.URL, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return statusError(resp.StatusCode)
	}
	return nil
}

type statusError int

func (e statusError) Error() string { return fmt.Sprintf("status %d", int(e)) }

// recorder counts results from every worker.
type recorder struct {
	ok, failed atomic.Int64

	mu        sync.Mutex
	byKind    map[string]int64
	samples   []string
	failTimes []time.Time
}

func (r *recorder) add(err error) {
	if err == nil {
		r.ok.Add(1)
		return
	}
	r.failed.Add(1)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byKind[failKind(err)]++
	if len(r.samples) < maxSamples {
		r.samples = append(r.samples, err.Error())
	}
	if len(r.failTimes) < maxFailTimes {
		r.failTimes = append(r.failTimes, now)
	}
}

func (r *recorder) result(start, end time.Time) LoadResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	byKind := make(map[string]int64, len(r.byKind))
	for k, n := range r.byKind {
		byKind[k] = n
	}
	return LoadResult{
		OK: r.ok.Load(), Failed: r.failed.Load(), ByKind: byKind,
		Samples:   append([]string(nil), r.samples...),
		FailTimes: append([]time.Time(nil), r.failTimes...),
		Start:     start, End: end,
	}
}

// failKind classifies a failed request.
func failKind(err error) string {
	var se statusError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return FailStatus
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return FailReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		strings.Contains(err.Error(), "server closed idle connection"):
		return FailEOF
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return FailTimeout
	}
	return FailOther
}
