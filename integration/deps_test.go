package integration

// Dependencies: --wait before the child starts, and the `wait` and `probe`
// subcommands (contract sections 2 and 4). Every dependency is a real server
// on 127.0.0.1 that the test opens, flips or delays.
//
// The helpers at the end of this file are shared by deps_test.go,
// endpoints_test.go, hooks_test.go and files_test.go.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lifecycled/lifecycled/internal/freeport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDepsWaitTCPOpensLate: the child starts only once the port is open, and
// soon after it (backoff from 50 ms, capped by the default 1 s interval).
func TestDepsWaitTCPOpensLate(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dir := t.TempDir()
	port := loopbackPort(t)
	opened := listenAfter(t, port, 500*time.Millisecond)

	stamp := filepath.Join(dir, "started")
	p := start(t, options{env: quickExit()}, "--wait", fmt.Sprintf("tcp://127.0.0.1:%d", port),
		"--", "sh", "-c", "date +%s%N > "+stamp)
	require.NotNil(t, p)
	res := p.wait(ctx)
	require.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)

	openedAt := <-opened
	startedAt, err := readStamp(ctx, stamp)
	require.NoError(t, err)
	latency := startedAt.Sub(openedAt)
	t.Logf("port open → child start: %s", latency)
	assert.Positive(t, latency, "the child started before the port was open")
	assert.Less(t, latency, 1500*time.Millisecond, "the child started long after the port opened")
}

// TestDepsWaitInParallel: several slow dependencies are waited for at once,
// so the total is that of the slowest, not the sum.
func TestDepsWaitInParallel(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	const delay = 700 * time.Millisecond
	var servers []*slowServer
	args := []string{}
	for range 3 {
		s := newSlowServer(t, delay)
		servers = append(servers, s)
		args = append(args, "--wait", s.URL+"/")
	}
	stamp := filepath.Join(t.TempDir(), "started")
	args = append(args, "--", "sh", "-c", "date +%s%N > "+stamp)

	res := runQuick(t, ctx, args...)
	require.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	startedAt, err := readStamp(ctx, stamp)
	require.NoError(t, err)

	var first, last time.Time
	for i, s := range servers {
		at := s.firstHit()
		require.False(t, at.IsZero(), "server %d was never asked", i)
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	t.Logf("first requests spread over %s; first request → child start %s", last.Sub(first), startedAt.Sub(first))
	assert.Less(t, last.Sub(first), delay/2, "the dependencies were not asked at the same time")
	assert.Less(t, startedAt.Sub(first), 2*delay+delay/3,
		"the wait took about the sum of the dependencies (%s each), not the longest", delay)
}

// TestDepsWaitTimeout: a dependency never up ends the run with 124, one line
// naming it, and the child never runs.
func TestDepsWaitTimeout(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	marker := filepath.Join(t.TempDir(), "started")
	target := fmt.Sprintf("tcp://127.0.0.1:%d", loopbackPort(t))

	res := runQuick(t, ctx, "--wait-timeout", "1s", "--wait", target, "--", "touch", marker)
	assert.Equal(t, 124, res.code, "stderr:\n%s", res.stderr)
	assertOneCause(t, res.stderr, target)
	assert.NoFileExists(t, marker, "the child ran although its dependency was never up")
	assert.Less(t, res.elapsed, 5*time.Second, "--wait-timeout 1s was not kept")
}

// TestDepsSignalWhileWaiting: SIGTERM and SIGINT while waiting end the run at
// once, with 128+N, without starting the child.
func TestDepsSignalWhileWaiting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{
		{syscall.SIGTERM, 143},
		{syscall.SIGINT, 130},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 20*time.Second)
			dep := newFlipServer(t, http.StatusServiceUnavailable)
			marker := filepath.Join(t.TempDir(), "started")
			p := start(t, options{env: quickExit()}, "--wait", dep.URL+"/", "--", "touch", marker)
			require.NotNil(t, p)
			// The first request proves lifecycled is waiting, with its
			// signal handlers long in place.
			require.NoError(t, poll(ctx, func() bool { return dep.hits.Load() > 0 }))

			sent := time.Now()
			require.NoError(t, p.signal(ctx, tc.sig))
			res := p.wait(ctx)
			assert.Equal(t, tc.code, res.code, "stderr:\n%s", res.stderr)
			assert.Less(t, time.Since(sent), 10*time.Second, "not at once (the dependency never answers)")
			assert.NoFileExists(t, marker, "the child started after a stop while waiting")
		})
	}
}

// TestDepsBadTarget: a malformed --wait target is a usage error naming it,
// and nothing runs.
func TestDepsBadTarget(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	for _, target := range []string{
		"tcp://127.0.0.1",        // no port
		"tcp://127.0.0.1:99999",  // port out of range
		"ftp://127.0.0.1:21",     // unknown scheme
		"127.0.0.1:80",           // no scheme
		"unix://relative/x.sock", // not absolute
		"exec:true",              // exec is for --ready only
		"http://:8080/healthz",   // no host
		"file://",                // empty path
	} {
		t.Run(target, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "started")
			res := runQuick(t, ctx, "--wait", target, "--", "touch", marker)
			assert.Equal(t, 2, res.code, "stderr:\n%s", res.stderr)
			assertOneCause(t, res.stderr, target)
			assert.NoFileExists(t, marker)
		})
	}
}

// TestDepsWaitAndProbeCommands: `lifecycled wait` exits 0, 124 or 2 and
// `lifecycled probe` 0, 1 or 2, for every kind of target up and down.
func TestDepsWaitAndProbeCommands(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	dir := t.TempDir()

	tcpUp := acceptingListener(t, "tcp", "127.0.0.1:0")
	ok := newFlipServer(t, http.StatusOK)
	unavailable := newFlipServer(t, http.StatusServiceUnavailable)
	file := filepath.Join(dir, "present")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	sock := filepath.Join(dir, "up.sock")
	acceptingListener(t, "unix", sock)
	staleSock := filepath.Join(dir, "stale.sock") // a socket file nobody listens on
	stale, err := net.Listen("unix", staleSock)
	require.NoError(t, err)
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, stale.Close())

	for _, tc := range []struct {
		name, target string
		up           bool
	}{
		{"tcp up", "tcp://" + tcpUp, true},
		{"tcp down", fmt.Sprintf("tcp://127.0.0.1:%d", loopbackPort(t)), false},
		{"http 200", ok.URL + "/healthz", true},
		{"http 503", unavailable.URL + "/healthz", false},
		{"file present", "file://" + file, true},
		{"file absent", "file://" + filepath.Join(dir, "absent"), false},
		{"unix up", "unix://" + sock, true},
		{"unix stale socket", "unix://" + staleSock, false},
		{"unix absent", "unix://" + filepath.Join(dir, "absent.sock"), false},
		{"dns localhost", "dns://localhost", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probe := runQuick(t, ctx, "probe", tc.target)
			wait := runQuick(t, ctx, "wait", "--timeout", "300ms", "--interval", "50ms", tc.target)
			if tc.up {
				assert.Equal(t, 0, probe.code, "probe stderr:\n%s", probe.stderr)
				assert.Equal(t, 0, wait.code, "wait stderr:\n%s", wait.stderr)
				return
			}
			assert.Equal(t, 1, probe.code, "probe stderr:\n%s", probe.stderr)
			assertOneCause(t, probe.stderr, tc.target)
			assert.Equal(t, 124, wait.code, "wait stderr:\n%s", wait.stderr)
			assertOneCause(t, wait.stderr, tc.target)
		})
	}

	t.Run("wait names only the targets still down", func(t *testing.T) {
		down := fmt.Sprintf("tcp://127.0.0.1:%d", loopbackPort(t))
		res := runQuick(t, ctx, "wait", "--timeout", "300ms", "tcp://"+tcpUp, "file://"+file, down)
		assert.Equal(t, 124, res.code, "stderr:\n%s", res.stderr)
		cause := assertOneCause(t, res.stderr, down)
		assert.NotContains(t, cause, tcpUp)
		assert.NotContains(t, cause, file)
	})
	t.Run("bad target", func(t *testing.T) {
		for _, args := range [][]string{
			{"probe", "tcp://127.0.0.1"},
			{"probe", "exec:true"},
			{"probe"},
			{"wait", "--timeout", "1s", "tcp://127.0.0.1"},
			{"wait", "tcp://" + tcpUp, "nope://x"},
			{"wait"},
		} {
			res := runQuick(t, ctx, args...)
			assert.Equal(t, 2, res.code, "%v stderr:\n%s", args, res.stderr)
			want := ""
			if len(args) > 1 {
				want = args[len(args)-1]
			}
			assertOneCause(t, res.stderr, want)
		}
	})
}

// TestDepsSignalWhileWaitingReachesChild: a SIGUSR1 sent while lifecycled
// waits is remembered and delivered once, after the child started; it must
// not kill a child that is still starting up (contract section 3: "never
// lost or fatal"). The child here does what a JVM or a shell script sourcing
// its environment does: some start-up work before it installs its handler.
func TestDepsSignalWhileWaitingReachesChild(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dir := t.TempDir()
	dep := newFlipServer(t, http.StatusServiceUnavailable)
	got := filepath.Join(dir, "usr1")
	script := fmt.Sprintf(`sleep 0.3; trap 'echo USR1 >> %s' USR1; : > %s/trapped; i=0
while [ $i -lt 20 ]; do sleep 0.05; i=$((i+1)); done`, got, dir)
	p := start(t, options{env: quickExit()}, "--log-level", "debug", "--wait", dep.URL+"/", "--wait-interval", "100ms", "--", "sh", "-c", script)
	require.NotNil(t, p)
	require.NoError(t, poll(ctx, func() bool { return dep.hits.Load() > 0 }))
	require.NoError(t, p.signal(ctx, syscall.SIGUSR1))
	// The child may exist only once lifecycled holds the signal.
	require.NoError(t, poll(ctx, func() bool {
		return strings.Contains(readAll(p.errFile), `"signal forwarded, or kept until the child has started","signal":"SIGUSR1"`)
	}), "stderr:\n%s", readAll(p.errFile))
	dep.set(http.StatusOK)

	res := p.wait(ctx)
	assert.Equal(t, 0, res.code, "the remembered SIGUSR1 killed the child before it could handle it; stderr:\n%s", res.stderr)
	b, _ := os.ReadFile(got)
	assert.Equal(t, "USR1\n", string(b), "SIGUSR1 must reach the child's handler exactly once")
}

// TestDepsWaitFileAppearsLate: a file:// dependency created after the start.
func TestDepsWaitFileAppearsLate(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dir := t.TempDir()
	dep := filepath.Join(dir, "config", "ready")
	stamp := filepath.Join(dir, "started")
	p := start(t, options{env: quickExit()}, "--wait", "file://"+dep, "--", "sh", "-c", "date +%s%N > "+stamp)
	require.NotNil(t, p)

	time.Sleep(400 * time.Millisecond)
	assert.NoFileExists(t, stamp, "the child started before its file existed")
	require.NoError(t, os.MkdirAll(filepath.Dir(dep), 0o755))
	created := time.Now()
	require.NoError(t, os.WriteFile(dep, []byte("ok"), 0o644))

	res := p.wait(ctx)
	require.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	startedAt, err := readStamp(ctx, stamp)
	require.NoError(t, err)
	t.Logf("file created → child start: %s", startedAt.Sub(created))
	assert.True(t, startedAt.After(created), "the child started before the file existed")
	assert.Less(t, startedAt.Sub(created), 1500*time.Millisecond)
}

// TestDepsWaitHTTPUnavailableThenOK: an HTTP dependency answering 503 is
// down; the child starts once it answers 200.
func TestDepsWaitHTTPUnavailableThenOK(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dep := newFlipServer(t, http.StatusServiceUnavailable)
	stamp := filepath.Join(t.TempDir(), "started")
	p := start(t, options{env: quickExit()}, "--wait", dep.URL+"/ready", "--", "sh", "-c", "date +%s%N > "+stamp)
	require.NotNil(t, p)

	require.NoError(t, poll(ctx, func() bool { return dep.hits.Load() >= 3 }))
	assert.NoFileExists(t, stamp, "the child started while its dependency answered 503")
	flipped := time.Now()
	dep.set(http.StatusOK)

	res := p.wait(ctx)
	require.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	startedAt, err := readStamp(ctx, stamp)
	require.NoError(t, err)
	assert.True(t, startedAt.After(flipped), "the child started before the dependency answered 200")
	assert.Less(t, startedAt.Sub(flipped), 1500*time.Millisecond)
	assert.Equal(t, "/ready", dep.lastPath())
	assert.True(t, strings.HasPrefix(dep.lastUserAgent(), "lifecycled/"), "User-Agent %q", dep.lastUserAgent())
}

// ---------------------------------------------------------------------------
// Helpers shared by deps_test.go, endpoints_test.go, hooks_test.go and
// files_test.go.

// quickExit is the environment of every lifecycled these tests start. A
// binary built with -race sleeps a second before it exits (GORACE's
// atexit_sleep_ms defaults to 1000), which would blur every exit time
// measured here and cost a second per run.
func quickExit() []string {
	return []string{"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")}
}

// runQuick runs `lifecycled args...` to the end, with quickExit.
func runQuick(t testing.TB, ctx context.Context, args ...string) result {
	t.Helper()
	p := start(t, options{env: quickExit()}, args...)
	if p == nil {
		return result{code: -1}
	}
	return p.wait(ctx)
}

// loopbackPort returns a TCP port on 127.0.0.1 that was free a moment ago,
// below the ephemeral range (see internal/freeport).
func loopbackPort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Loopback()
	require.NoError(t, err)
	return p
}

// listenAfter opens a listener on 127.0.0.1:port after d, accepting and
// closing connections until the test ends; the channel yields when it
// opened.
func listenAfter(t testing.TB, port int, d time.Duration) <-chan time.Time {
	t.Helper()
	opened := make(chan time.Time, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-time.After(d):
		case <-stop:
			return
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Errorf("listen on port %d: %v", port, err)
			return
		}
		opened <- time.Now()
		go func() { <-stop; ln.Close() }()
		acceptAndClose(ln)
	})
	t.Cleanup(func() { close(stop); wg.Wait() })
	return opened
}

// acceptingListener listens on network/addr, accepting and closing every
// connection until the test ends, and returns the address.
func acceptingListener(t testing.TB, network, addr string) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); acceptAndClose(ln) }()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// flipServer is an HTTP server on 127.0.0.1 answering every request with a
// status the test can change, and counting the requests.
type flipServer struct {
	*httptest.Server
	status atomic.Int32
	hits   atomic.Int32
	mu     sync.Mutex
	reqs   []flipRequest
}

type flipRequest struct {
	at                  time.Time
	method, path, agent string
	status              int
}

func newFlipServer(t testing.TB, status int) *flipServer {
	t.Helper()
	s := &flipServer{}
	s.status.Store(int32(status))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := int(s.status.Load())
		s.mu.Lock()
		s.reqs = append(s.reqs, flipRequest{time.Now(), r.Method, r.URL.Path, r.UserAgent(), code})
		s.mu.Unlock()
		s.hits.Add(1)
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d\n", code)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *flipServer) set(status int) { s.status.Store(int32(status)) }

func (s *flipServer) requests() []flipRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]flipRequest(nil), s.reqs...)
}

func (s *flipServer) last() flipRequest {
	r := s.requests()
	if len(r) == 0 {
		return flipRequest{}
	}
	return r[len(r)-1]
}

func (s *flipServer) lastPath() string      { return s.last().path }
func (s *flipServer) lastUserAgent() string { return s.last().agent }

// countSince counts the requests answered with status at or after since.
func (s *flipServer) countSince(since time.Time, status int) int {
	n := 0
	for _, r := range s.requests() {
		if !r.at.Before(since) && r.status == status {
			n++
		}
	}
	return n
}

// slowServer answers 200 after a delay, and records when requests arrive.
type slowServer struct {
	*httptest.Server
	mu    sync.Mutex
	first time.Time
}

func newSlowServer(t testing.TB, delay time.Duration) *slowServer {
	t.Helper()
	s := &slowServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.first.IsZero() {
			s.first = time.Now()
		}
		s.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *slowServer) firstHit() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// readStamp waits for path to hold a complete `date +%s%N` and returns it.
func readStamp(ctx context.Context, path string) (time.Time, error) {
	var ns int64
	err := poll(ctx, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		ns, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return err == nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("read time stamp %s: %w", path, err)
	}
	return time.Unix(0, ns), nil
}

// preStopAndTerm reads the stamps DIR/prestop and DIR/term: when the
// preStop hook wrote its own, and when the child got SIGTERM
// (childTrapsTerm).
func preStopAndTerm(t testing.TB, ctx context.Context, dir string) (preStop, term time.Time) {
	t.Helper()
	preStop, err := readStamp(ctx, filepath.Join(dir, "prestop"))
	require.NoError(t, err, "preStop did not run")
	term, err = readStamp(ctx, filepath.Join(dir, "term"))
	require.NoError(t, err, "the child got no SIGTERM")
	return preStop, term
}

// causeLines are the one-line causes of contract section 2 on lifecycled's
// stderr: its error records once its logger exists (one stream, in the log
// format), and before that (a usage error) the lines that are no record.
func causeLines(stderr string) []string {
	var out []string
	for _, l := range lines(stderr) {
		var r logRecord
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &r) == nil && r.str("level") != "error" {
			continue
		}
		out = append(out, l)
	}
	return out
}

// assertOneCause checks that stderr holds exactly one line besides the log
// records, naming want, and returns it.
func assertOneCause(t testing.TB, stderr, want string) string {
	t.Helper()
	causes := causeLines(stderr)
	if !assert.Len(t, causes, 1, "want one line naming %q on stderr:\n%s", want, stderr) {
		return ""
	}
	assert.Contains(t, causes[0], want)
	return causes[0]
}

// logRecord is one JSON line of lifecycled's log.
type logRecord map[string]any

func (r logRecord) str(key string) string {
	s, _ := r[key].(string)
	return s
}

// logRecords are lifecycled's JSON log lines on stderr whose msg is msg
// (all of them if msg is empty).
func logRecords(stderr, msg string) []logRecord {
	var out []logRecord
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r logRecord
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		if msg == "" || r.str("msg") == msg {
			out = append(out, r)
		}
	}
	return out
}

// testHTTPClient is the tests' client: no keep-alives, so no connection
// outlives a request, and a bound on every request.
var testHTTPClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
}

// fetch does one request and returns the status and body.
func fetch(ctx context.Context, method, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := testHTTPClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// getStatus is the status of a GET of url, 0 if there was no answer.
func getStatus(ctx context.Context, url string) int {
	code, _, _ := fetch(ctx, http.MethodGet, url)
	return code
}

// waitStatus polls a GET of url until it answers want, and returns the body
// of that answer.
func waitStatus(ctx context.Context, url string, want int) (string, error) {
	var (
		body string
		last int
	)
	err := poll(ctx, func() bool {
		var code int
		code, body, _ = fetch(ctx, http.MethodGet, url)
		last = code
		return code == want
	})
	if err != nil {
		return body, fmt.Errorf("GET %s: want %d, last %d (%q): %w", url, want, last, body, err)
	}
	return body, nil
}

// isRefused reports whether err is a refused connection: nothing listens.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// hasExited reports whether lifecycled has exited (without waiting).
func (p *proc) hasExited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// childTrapsTerm is a child that runs for a minute, exits 0 on SIGTERM and
// writes DIR/ready once its trap is in place (and DIR/term, a time stamp,
// when it gets SIGTERM).
func childTrapsTerm(dir string) []string { return childTrapsTermFor(dir, 60) }

// startTrapping starts `lifecycled args... -- childTrapsTerm(dir)`
// (quickExit) and waits until the child is ready for SIGTERM.
func startTrapping(t testing.TB, ctx context.Context, dir string, args ...string) *proc {
	t.Helper()
	argv := append(append(slices.Clone(args), "--"), childTrapsTerm(dir)...)
	p := start(t, options{env: quickExit()}, argv...)
	require.NotNil(t, p)
	require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
	return p
}

// childTrapsTermFor is childTrapsTerm running for secs seconds. DIR/ready
// is written only once the background sleep exists, so that a SIGTERM sent
// after it reaches the sleep too; the trap kills it as well, in case the
// signal came in between.
func childTrapsTermFor(dir string, secs float64) []string {
	return []string{"sh", "-c", fmt.Sprintf(
		`trap 'date +%%s%%N > %[1]s/term; kill $! 2>/dev/null; exit 0' TERM; sleep %[2]g & : > %[1]s/ready; wait`, dir, secs)}
}
