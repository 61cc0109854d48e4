package lbsim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifecycled/lifecycled/internal/ctxtime"
	"github.com/lifecycled/lifecycled/internal/freeport"
)

// BackendPackage is the import path of the backend program the simulation
// stops (integration/testdata/backend).
const BackendPackage = "github.com/lifecycled/lifecycled/integration/testdata/backend"

// BuildBackend builds the backend program into dir and returns its path. It
// must run inside the lifecycled module.
func BuildBackend(ctx context.Context, dir string) (string, error) {
	path := filepath.Join(dir, "backend")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", path, BackendPackage).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", BackendPackage, err, out)
	}
	return path, nil
}

// Init is the process that runs each backend and gets its SIGTERM.
type Init string

// The inits RollingStop compares.
const (
	// InitLifecycled is lifecycled with --drain-delay; the Balancer
	// polls its /readyz, which fails as soon as the stop begins.
	InitLifecycled Init = "lifecycled"
	// InitTini is `tini -s --`; the Balancer polls the app's own
	// /healthz, which answers until the app closes its listener.
	InitTini Init = "tini"
	// InitDumbInit is `dumb-init`; readiness as for tini.
	InitDumbInit Init = "dumb-init"
)

// RollingStop is one step of a rolling update: two backends behind a
// Balancer, steady Load through it, and one backend stopped by SIGTERM to
// its init in the middle of it, as the kubelet stops a pod's container
// while the endpoints are being updated.
type RollingStop struct {
	Init Init
	// InitPath is the init's binary; empty means Init's name, looked up
	// in PATH.
	InitPath string
	// Backend is the path of the backend program (see BuildBackend).
	Backend string
	// DrainDelay is lifecycled's --drain-delay (InitLifecycled only).
	DrainDelay time.Duration
	// DrainQuiet, if more than 0, is lifecycled's --drain-quiet: the
	// adaptive drain, with DrainDelay its ceiling (InitLifecycled only).
	DrainQuiet time.Duration
	// DrainMin, if more than 0, is lifecycled's --drain-min (with
	// DrainQuiet).
	DrainMin time.Duration
	// Propagation is the Balancer's propagation delay (default 1s).
	Propagation time.Duration
	// Rate is the total request rate (default 200 per second).
	Rate float64
	// KeepAliveWorkers, NewConnWorkers, PooledWorkers and H2Workers
	// split the load (see Load; default 4 keep-alive and 4 new-connection
	// workers when all are zero).
	KeepAliveWorkers, NewConnWorkers, PooledWorkers, H2Workers int
	// L7 puts an L7 proxy with pooled upstream connections in front of
	// the backends instead of the L4 one (BalancerOptions.L7).
	L7 bool
	// Before is how long the load runs before the SIGTERM (default 1s);
	// After is how long it goes on once the stopped init has exited
	// (default Propagation + 500ms, so that the Balancer has dropped the
	// backend by the end whatever the init did).
	Before, After time.Duration
	// Work is each request's time in the backend (default 2ms).
	Work time.Duration
	// Stderr receives every init's and backend's stderr (lifecycled logs
	// there); nil discards it.
	Stderr io.Writer
	// Env is added to the environment of the inits and backends.
	Env []string
}

// RollingStopResult is what one RollingStop measured.
type RollingStopResult struct {
	// Load is what the clients got, over the whole run.
	Load LoadResult
	// ExitCode is the stopped init's exit code, -1 if a signal killed it.
	ExitCode int
	// SignalAt is when the stopped init was sent SIGTERM.
	SignalAt time.Time
	// Stop is the time from that SIGTERM to the init's exit.
	Stop time.Duration
	// TermAfter is the time from that SIGTERM to the app's own SIGTERM.
	TermAfter time.Duration
	// AppStop is the app's own stop time: its SIGTERM to its exit.
	AppStop time.Duration
	// Drain is the drain delay the init was given (0 but for lifecycled).
	Drain time.Duration
	// Served counts requests the stopped app served.
	Served int64
	// LastSent is the time from the SIGTERM to the last request byte the
	// Balancer sent to the stopped backend (negative: before the SIGTERM).
	LastSent time.Duration
	// Backends and Events are the Balancer's view; the stopped backend
	// is "a", the one that stays "b".
	Backends []BackendStats
	Events   []Event
}

// Extra is what the init added to the stop: Stop minus the configured
// drain and the app's own stop time. Signal delivery, the drain timer's
// lateness, reaping and the init's own exit are in it.
func (r RollingStopResult) Extra() time.Duration { return r.Stop - r.Drain - r.AppStop }

// Stopped returns the Balancer's stats of the stopped backend.
func (r RollingStopResult) Stopped() BackendStats {
	for _, b := range r.Backends {
		if b.Name == "a" {
			return b
		}
	}
	return BackendStats{}
}

func (s *RollingStop) defaults() {
	if s.Propagation <= 0 {
		s.Propagation = DefaultPropagation
	}
	if s.Rate <= 0 {
		s.Rate = 200
	}
	if s.KeepAliveWorkers == 0 && s.NewConnWorkers == 0 && s.PooledWorkers == 0 && s.H2Workers == 0 {
		s.KeepAliveWorkers, s.NewConnWorkers = 4, 4
	}
	if s.Before <= 0 {
		s.Before = time.Second
	}
	if s.After <= 0 {
		s.After = s.Propagation + 500*time.Millisecond
	}
	if s.Work <= 0 {
		s.Work = 2 * time.Millisecond
	}
	if s.Stderr == nil {
		s.Stderr = io.Discard
	}
}

// Run runs the scenario and cleans up every process it started, whatever
// happens. ctx bounds the whole run.
func (s RollingStop) Run(ctx context.Context) (res RollingStopResult, err error) {
	s.defaults()
	if s.Init != InitLifecycled {
		s.DrainDelay = 0
	}
	res.Drain = s.DrainDelay

	a, err := s.startBackend(ctx, "a")
	if err != nil {
		return res, err
	}
	defer a.kill()
	b, err := s.startBackend(ctx, "b")
	if err != nil {
		return res, err
	}
	defer b.kill()

	lb, err := NewBalancer([]Backend{a.endpoint, b.endpoint}, BalancerOptions{Propagation: s.Propagation, L7: s.L7})
	if err != nil {
		return res, err
	}
	lbCtx, stopLB := context.WithCancel(ctx)
	lbDone := make(chan error, 1)
	go func() { lbDone <- lb.Run(lbCtx) }()
	defer func() {
		stopLB()
		if lerr := <-lbDone; lerr != nil && err == nil {
			err = lerr
		}
	}()

	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = lb.WaitInRotation(wctx, "a", "b")
	cancel()
	if err != nil {
		return res, fmt.Errorf("%w (a: %s; b: %s)", err, a.status(), b.status())
	}

	load := Load{
		URL: lb.URL("/"), KeepAliveWorkers: s.KeepAliveWorkers, NewConnWorkers: s.NewConnWorkers,
		PooledWorkers: s.PooledWorkers, H2Workers: s.H2Workers, Rate: s.Rate, Duration: s.Before + s.DrainDelay + s.After + time.Minute,
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	type loadResult struct {
		r   LoadResult
		err error
	}
	loadDone := make(chan loadResult, 1)
	go func() {
		r, err := load.Run(loadCtx)
		loadDone <- loadResult{r, err}
	}()
	// Stopping the load waits for its last requests, on every path out.
	endLoad := sync.OnceValue(func() loadResult {
		stopLoad()
		return <-loadDone
	})
	defer endLoad()

	if err := ctxtime.Sleep(ctx, s.Before); err != nil {
		return res, err
	}
	res.SignalAt = time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return res, fmt.Errorf("SIGTERM %s backend a: %w", s.Init, err)
	}
	stopTimeout := s.DrainDelay + 30*time.Second
	select {
	case <-a.done:
	case <-time.After(stopTimeout):
		return res, fmt.Errorf("%s backend a did not exit within %s of SIGTERM", s.Init, stopTimeout)
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.Stop = a.exitAt.Sub(res.SignalAt)
	res.ExitCode = a.state.ExitCode()

	if err := ctxtime.Sleep(ctx, s.After); err != nil {
		return res, err
	}
	lr := endLoad()
	if lr.err != nil {
		return res, lr.err
	}
	res.Load = lr.r
	res.Backends, res.Events = lb.Stats(), lb.Events()
	if last := res.Stopped().LastSent; !last.IsZero() {
		res.LastSent = last.Sub(res.SignalAt)
	}

	if err := a.parseFacts(&res); err != nil {
		return res, err
	}
	return res, nil
}

// backendProc is a backend under its init.
type backendProc struct {
	endpoint Backend
	binary   string
	cmd      *exec.Cmd
	facts    *factReader

	done   chan struct{}
	state  *os.ProcessState
	exitAt time.Time
}

// startBackend starts backend name under s.Init on fresh ports.
func (s RollingStop) startBackend(ctx context.Context, name string) (*backendProc, error) {
	appPort, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	app := "127.0.0.1:" + strconv.Itoa(appPort)
	argv := []string{s.Backend, "-addr", app, "-work", s.Work.String()}
	endpoint := Backend{Name: name, Addr: app, ReadyURL: "http://" + app + "/healthz"}
	bin := s.InitPath
	if bin == "" {
		bin = string(s.Init)
	}
	switch s.Init {
	case InitLifecycled:
		healthPort, err := freeport.Loopback()
		if err != nil {
			return nil, err
		}
		health := "127.0.0.1:" + strconv.Itoa(healthPort)
		endpoint.ReadyURL = "http://" + health + "/readyz"
		flags := []string{bin,
			"--name", "backend-" + name,
			"--listen", health,
			"--ready", "http://" + app + "/healthz", "--ready-period", "100ms",
			"--drain-delay", s.DrainDelay.String(),
			"--grace-period", "10s"}
		if s.DrainQuiet > 0 {
			flags = append(flags, "--drain-quiet", s.DrainQuiet.String())
		}
		if s.DrainMin > 0 {
			flags = append(flags, "--drain-min", s.DrainMin.String())
		}
		argv = append(append(flags, "--"), argv...)
	case InitTini:
		// -s: not PID 1, tini must be a subreaper to reap orphans.
		argv = append([]string{bin, "-s", "--"}, argv...)
	case InitDumbInit:
		argv = append([]string{bin}, argv...)
	default:
		return nil, fmt.Errorf("unknown init %q", s.Init)
	}

	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// The inits are not PID 1 here: a session of their own keeps them
	// from the test's terminal and its signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdout, cmd.Stderr = w, s.Stderr
	cmd.Env = append(environ(), s.Env...)
	cmd.WaitDelay = 5 * time.Second
	p := &backendProc{endpoint: endpoint, binary: s.Backend, cmd: cmd, facts: newFactReader(r), done: make(chan struct{})}
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("start %s: %w", strings.Join(argv, " "), err)
	}
	go func() {
		_ = cmd.Wait()
		p.state, p.exitAt = cmd.ProcessState, time.Now()
		close(p.done)
	}()
	return p, nil
}

func (p *backendProc) status() string {
	select {
	case <-p.done:
		return "exited: " + p.state.String()
	default:
		return "running"
	}
}

// parseFacts reads what the stopped app printed: when it got SIGTERM, when
// it exited, how many requests it served.
func (p *backendProc) parseFacts(res *RollingStopResult) error {
	// The app has exited; its last lines may still be in the pipe.
	f := p.facts.wait(2 * time.Second)
	term, err1 := strconv.ParseInt(f["term_ns"], 10, 64)
	exit, err2 := strconv.ParseInt(f["exit_ns"], 10, 64)
	served, err3 := strconv.ParseInt(f["served"], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("backend a's output %v: %w", f, err)
	}
	res.TermAfter = time.Unix(0, term).Sub(res.SignalAt)
	res.AppStop = time.Duration(exit - term)
	res.Served = served
	return nil
}

// kill stops whatever is left of the backend and its init, and waits for
// the init. The app is killed by pid, since tini and dumb-init do not
// kill their child when they die; the pid is checked to still run the
// backend binary.
func (p *backendProc) kill() {
	select {
	case <-p.done:
	default:
		if pid, err := strconv.Atoi(p.facts.get("pid")); err == nil && runs(pid, p.binary) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.facts.close()
}

// runs reports whether process pid runs the program at path.
func runs(pid int, path string) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	abs, err := filepath.Abs(path)
	return err == nil && exe == abs
}

// factReader collects the key=value lines a backend prints on stdout.
type factReader struct {
	r    *os.File
	mu   sync.Mutex
	m    map[string]string
	done chan struct{} // closed at EOF
}

func newFactReader(r *os.File) *factReader {
	f := &factReader{r: r, m: map[string]string{}, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				f.mu.Lock()
				f.m[k] = v
				f.mu.Unlock()
			}
		}
	}()
	return f
}

func (f *factReader) get(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[key]
}

// wait waits up to d for the end of the output and returns what was read.
func (f *factReader) wait(d time.Duration) map[string]string {
	select {
	case <-f.done:
	case <-time.After(d):
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]string, len(f.m))
	for k, v := range f.m {
		out[k] = v
	}
	return out
}

func (f *factReader) close() { _ = f.r.Close() }

// environ is this process's environment without LIFECYCLED_* variables,
// which would change the lifecycled under test.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIFECYCLED_") {
			env = append(env, kv)
		}
	}
	return env
}
