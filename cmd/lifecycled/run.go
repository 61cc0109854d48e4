package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/internal/background"
	"github.com/lifecycled/lifecycled/internal/earlysignal"
	"github.com/lifecycled/lifecycled/internal/logschema"
	"github.com/lifecycled/lifecycled/probes"
	"github.com/lifecycled/lifecycled/supervisor"
)

// Names of the /readyz checks, in the order `?verbose` lists them.
const (
	checkDependencies = "dependencies"
	checkChild        = "child"
	checkPostStart    = "poststart"
	checkProbe        = "readiness-probe"
	checkShutdown     = "shutdown"
)

// filesFlushMax bounds how long lifecycled waits, when it exits, for the
// last tombstone to be written: other containers' --exit-with read it, but
// a volume that does not answer must not keep lifecycled from exiting.
const filesFlushMax = 2 * time.Second

// logQueueLines bounds lifecycled's queue of log lines: about 300 KiB of
// JSON lines, far more than it logs in a burst; beyond it lines are
// dropped, counted and reported.
const logQueueLines = 1024

// logFlushMax bounds how long lifecycled waits, when it exits, for its
// queued log lines to reach stderr: no time at all for a reader that keeps
// up, and a stderr nobody reads must not keep it from exiting.
const logFlushMax = time.Second

// runMain is `lifecycled run`: parse, validate, then hand over to the actors.
func runMain(args []string, stderr io.Writer) int {
	// Every forwarded signal has been caught since package
	// initialisation (earlysignal): a signal sent while lifecycled is
	// still starting, parsing flags or waiting for dependencies is
	// remembered, and a Go PID 1 that does not handle SIGTERM would exit
	// with status 2.
	sigs := earlysignal.C()

	guard := &epipeGuard{w: stderr, fd: -1}
	if f, ok := stderr.(*os.File); ok {
		guard.fd = int(f.Fd())
	}
	stderr = guard
	cfg, code, ok := loadRunConfig(args, os.Getenv, os.Stdout, stderr)
	if !ok {
		return code
	}
	unsetOwnEnv()
	// From here on nothing writes to stderr in line: a stderr nobody
	// reads must not block the stop (package background).
	logs := background.New(logQueueLines)
	defer logs.Close(logFlushMax)
	logger, err := newLogger(cfg.logFormat, cfg.logLevel, logs.Writer(stderr))
	if err != nil {
		return usageError(logs.Writer(stderr), "%v", err)
	}
	logs.OnDrained = func(n uint64) {
		logger.Warn("dropped log lines: stderr was not being read", zap.Uint64("lines", n))
	}
	logStartup(logger, cfg)
	a := newApp(cfg, logger, logs.Writer(stderr), logs.Dropped)
	a.stderrGuard = guard
	return a.run(sigs)
}

// loadRunConfig parses flags, environment and config file. It returns
// ok=false with the exit code when lifecycled must stop here (--help, or a
// usage error already printed).
func loadRunConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) (*runConfig, int, bool) {
	s, err := loadSettings(args, getenv, os.ReadFile)
	if isHelp(err) {
		printRunUsage(stdout)
		return nil, exitOK, false
	}
	if err != nil {
		return nil, usageError(stderr, "%v", err), false
	}
	cfg, err := newRunConfig(s)
	if err != nil {
		return nil, usageError(stderr, "%v", err), false
	}
	cfg.settings = s
	return cfg, 0, true
}

// exitError ends the actor group with the process's exit code.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// stopRequest records requests to stop: the first starts the stop
// sequence, a second SIGTERM or SIGINT skips what is left of its waits.
type stopRequest struct {
	mu     sync.Mutex
	n      int
	sig    syscall.Signal
	reason string
	first  chan struct{}
	second chan struct{}
}

func newStopRequest() *stopRequest {
	return &stopRequest{first: make(chan struct{}), second: make(chan struct{})}
}

// request records one stop request; sig is 0 when it did not come from a
// signal (POST /quitquitquit, --exit-with), and such requests never count
// as the second one.
func (s *stopRequest) request(sig syscall.Signal, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n > 0 && sig == 0 {
		return
	}
	s.n++
	switch s.n {
	case 1:
		s.sig, s.reason = sig, reason
		close(s.first)
	case 2:
		close(s.second)
	}
}

// requested returns the first request's signal and reason.
func (s *stopRequest) requested() (syscall.Signal, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sig, s.reason
}

// app is one run of lifecycled: its configuration and the parts its actors
// share.
type app struct {
	cfg    *runConfig
	logger *zap.Logger
	stderr io.Writer
	// stderrGuard tells lifecycled's own SIGPIPEs (from writing to a
	// broken stderr) from those sent to it; nil forwards them all.
	stderrGuard *epipeGuard

	reg          *prometheus.Registry
	metrics      *runMetrics
	probeMetrics *probes.Metrics
	drainMetrics *drain.Metrics
	health       *probes.Health
	hookLog      *drain.HookLog
	runner       *drain.Runner
	// files writes the tombstone off the path of supervision, in order.
	files *background.Queue

	reaper    *supervisor.Reaper
	forwarder *supervisor.Forwarder
	stop      *stopRequest
	started   chan struct{} // closed once the child runs
	startedUp chan struct{} // closed once the child runs and postStart succeeded
	// draining is closed once the stop sequence has begun.
	draining    chan struct{}
	drainingNow func()

	stderrTail  *supervisor.StderrTail // with --termination-log-tail
	stderrTailW *os.File               // the child's end of its pipe

	mu    sync.Mutex
	pid   int
	phase string // the current phase, for the termination message
}

// newApp returns the run of cfg. stderr is where lifecycled's own lines go
// (queued, never blocking); logsDropped counts those dropped.
func newApp(cfg *runConfig, logger *zap.Logger, stderr io.Writer, logsDropped func() uint64) *app {
	a := &app{cfg: cfg, logger: logger, stderr: stderr, stop: newStopRequest(), started: make(chan struct{}),
		startedUp: make(chan struct{}), draining: make(chan struct{})}
	a.drainingNow = sync.OnceFunc(func() { close(a.draining) })
	a.files = background.New(16)
	a.reg = newRegistry(cfg.listen != "")
	a.metrics = newRunMetrics(a.reg, logsDropped)
	a.probeMetrics = probes.NewMetrics(a.reg)
	a.drainMetrics = drain.NewMetrics(a.reg)

	a.health = probes.NewHealth()
	start := time.Now()
	a.health.OnReadyChange(func(ready bool) { a.metrics.setReady(ready, start) })
	a.health.Set(checkDependencies, len(cfg.waits) == 0, "waiting for dependencies")
	a.health.Set(checkChild, false, "not started")
	a.health.Set(checkPostStart, cfg.postStart == nil, "postStart hook has not finished")
	if cfg.ready != nil {
		a.health.Set(checkProbe, false, "no probe has passed yet")
	}
	a.health.Set(checkShutdown, true, "")

	if cfg.hookLogDir != "" {
		a.hookLog = drain.OpenHookLog(cfg.hookLogDir, cfg.name, 1<<20, logger)
	}
	a.reaper = supervisor.NewReaper(logger, a.metrics.reaped.Inc)
	a.runner = drain.NewRunner(a.reaper, logger, a.hookLog, a.drainMetrics, userAgent())
	a.forwarder = supervisor.NewForwarder(cfg.signalMap, a.metrics.signalForwarded)
	return a
}

func userAgent() string {
	v, _ := buildVersion()
	return "lifecycled/" + v
}

// probeOptions are the options of every check: exec probes run through the
// reaper, lifecycled's one waiter.
func (a *app) probeOptions() probes.Options {
	return probes.Options{UserAgent: userAgent(), Commands: a.reaper}
}

// run adds the actors and returns the exit code. The lifecycle actor
// decides it; the others serve it and stop when it is done.
func (a *app) run(sigs <-chan os.Signal) int {
	if err := supervisor.BecomeSubreaper(); err != nil {
		a.logger.Warn("cannot become the reaper of the child's orphans", zap.Error(err))
	}
	if a.cfg.tombstoneDir != "" {
		if err := os.MkdirAll(a.cfg.tombstoneDir, 0o755); err != nil {
			a.logger.Warn("cannot create the tombstone directory", zap.String("dir", a.cfg.tombstoneDir), zap.Error(err))
		}
		// Held until the process ends, however it ends: --exit-with
		// watchers take a free lock under a tombstone that does not say
		// exited for a death (drain.LockTombstone).
		lock, err := drain.LockTombstone(a.cfg.tombstoneDir, a.cfg.name)
		if err != nil {
			a.logger.Warn("cannot lock the tombstone: --exit-with watchers will not notice if lifecycled is killed", zap.Error(err))
		}
		defer lock.Close()
	}
	if a.cfg.terminationGrace > 0 {
		if err := a.cfg.budget().Check(); err != nil {
			a.logger.Warn("stop sequence does not fit --termination-grace-period", zap.Error(err))
		}
	}
	var g run.Group
	actor := func(execute func(ctx context.Context) error) {
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return execute(ctx) }, func(error) { cancel() })
	}
	// The reaper is no actor: it must outlive them all, since a hook or an
	// exec probe cancelled at the end still waits for its status.
	reapCtx, stopReaping := context.WithCancel(context.Background())
	reaped := make(chan struct{})
	go func() { defer close(reaped); _ = a.reaper.Run(reapCtx) }()
	defer func() { stopReaping(); <-reaped }()
	actor(func(ctx context.Context) error { return a.handleSignals(ctx, sigs) })

	for _, s := range []struct {
		addr     string
		loopback bool
		handler  http.Handler
	}{
		{a.cfg.listen, false, a.healthHandler()},
		{a.cfg.adminListen, true, a.adminHandler()},
	} {
		if s.addr == "" {
			continue
		}
		ln, err := listen(s.addr, s.loopback)
		if err != nil {
			a.fail("lifecycled: %v", err)
			return exitUsage
		}
		srv := newHTTPServer(s.handler, a.logger)
		actor(func(ctx context.Context) error { return serve(ctx, srv, ln) })
	}
	if a.cfg.ready != nil {
		prober := probes.NewProber(*a.cfg.ready, a.probeOptions(), a.logger, a.probeMetrics,
			func(ready bool, reason string) { a.health.Set(checkProbe, ready, reason) })
		actor(func(ctx context.Context) error {
			select {
			case <-a.started:
			case <-ctx.Done():
				return nil
			}
			if a.cfg.drain.DrainQuiet <= 0 {
				return prober.Run(ctx)
			}
			// The adaptive drain counts new connections to the app's
			// port: the probe's own would keep it from ever going
			// quiet. While draining, readiness fails anyway.
			probeCtx, stopProbing := context.WithCancel(ctx)
			defer stopProbing()
			go func() {
				select {
				case <-a.draining:
					stopProbing()
				case <-probeCtx.Done():
				}
			}()
			err := prober.Run(probeCtx)
			if ctx.Err() == nil && probeCtx.Err() != nil {
				<-ctx.Done() // an actor that returns would end the run
				return nil
			}
			return err
		})
	}
	if a.cfg.live != nil {
		actor(a.runLiveProbe)
	}
	if len(a.cfg.exitWith) > 0 {
		actor(a.watchExitWith)
	}
	// The lifecycle actor is never cancelled: when another actor fails it
	// is asked to stop the child as on SIGTERM, so no child outlives us.
	g.Add(func() error { return exitError{a.lifecycle()} }, func(err error) {
		if !errors.As(err, new(exitError)) {
			a.stop.request(0, "internal error: "+err.Error())
		}
	})

	err := g.Run()
	if !a.files.Close(filesFlushMax) {
		a.logger.Warn("exiting before the last tombstone was written: the volume does not answer",
			zap.String("dir", a.cfg.tombstoneDir), zap.Duration("waited", filesFlushMax))
	}
	if err := a.hookLog.Close(); err != nil {
		a.logger.Warn("exiting before the hook log was written", zap.Error(err))
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	a.logger.Error("lifecycled failed", zap.Error(err))
	return 1
}

// handleSignals is the signal actor: SIGTERM and SIGINT start the stop
// sequence, every other caught signal goes to the child.
func (a *app) handleSignals(ctx context.Context, sigs <-chan os.Signal) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-sigs:
			sig := s.(syscall.Signal)
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT:
				a.logger.Info("stop requested", zap.String("signal", supervisor.SignalName(sig)))
				a.stop.request(sig, "received "+supervisor.SignalName(sig))
			default:
				if sig == syscall.SIGPIPE && a.stderrGuard.ownSIGPIPE() {
					continue // lifecycled's own: see epipeGuard
				}
				if err := a.forwarder.Forward(sig); err != nil {
					a.logger.Warn("cannot forward signal", zap.String("signal", supervisor.SignalName(sig)), zap.Error(err))
				}
			}
		}
	}
}

// watchExitWith is the --exit-with actor: once every named container has
// exited, or died without saying so, stop as on SIGTERM (the sidecar of a
// Job).
func (a *app) watchExitWith(ctx context.Context) error {
	died, err := drain.WatchExited(ctx, a.cfg.tombstoneDir, a.cfg.exitWith, drain.DefaultWatchInterval)
	if err == nil {
		reason := strings.Join(a.cfg.exitWith, ", ") + " exited"
		if len(died) > 0 {
			reason = strings.Join(died, ", ") + " died without writing exited (lock released)"
			a.logger.Warn("stopping: "+reason, zap.Strings("exit_with", a.cfg.exitWith), zap.Strings("died", died))
		} else {
			a.logger.Info("stopping: watched containers exited", zap.Strings("exit_with", a.cfg.exitWith))
		}
		a.stop.request(0, reason)
	}
	<-ctx.Done()
	return nil
}

// lifecycle is the container's life from start to end: wait for the
// dependencies, start the child, run postStart, supervise, stop. It returns
// the exit code.
func (a *app) lifecycle() int {
	ctx := context.Background()
	a.enterPhase("waiting", nil, "")
	if code, ok := a.waitDependencies(ctx); !ok {
		return code
	}
	a.health.Set(checkDependencies, true, "")

	a.enterPhase("starting", nil, "")
	child, err := a.reaper.Start(supervisor.Spec{
		Argv:              a.cfg.command,
		SingleChild:       a.cfg.singleChild,
		ParentDeathSignal: syscall.SIGKILL,
		Stderr:            a.childStderr(),
	})
	a.startStderrTail(err == nil)
	if err != nil {
		code := 126
		var se *supervisor.StartError
		if errors.As(err, &se) {
			code = se.Code
		}
		a.fail("lifecycled: %v", err)
		a.finish(nil, code, "", err.Error())
		return code
	}
	a.mu.Lock()
	a.pid = child.Pid()
	a.mu.Unlock()
	a.logger.Info("child started", zap.Int("pid", child.Pid()), zap.Strings("command", logArgv(a.cfg.command)), zap.Int("argc", len(a.cfg.command)))
	a.forwarder.Attach(child)
	a.health.Set(checkChild, true, "")
	close(a.started)

	if failure := a.postStart(ctx, child); failure != "" {
		a.stopChild(ctx, child)
		a.finish(child, exitPostStart, "", failure)
		return exitPostStart
	}
	select {
	case <-a.stop.first: // a stop during postStart: no running phase
	default:
		a.enterPhase("running", nil, "")
	}

	var how string
	select {
	case <-child.Exited():
		how = "the child exited by itself"
		if supervisor.Terminate(ctx, child, a.cfg.stopSignal, a.cfg.gracePeriod).Killed {
			a.logger.Warn("killed what was left of the child's process group after the grace period")
			how += "; SIGKILL sent to what was left of its process group"
		}
	case <-a.stop.first:
		_, reason := a.stop.requested()
		how = "stopped: " + reason
		if a.stopChild(ctx, child) {
			how += fmt.Sprintf("; SIGKILL after the %s grace period", a.cfg.gracePeriod)
		}
	}
	select {
	case <-child.Done():
	default:
		// Terminate waited supervisor.KillWait after SIGKILL: what is
		// left cannot be ended by a signal (a zombie whose parent lives
		// outside the group, a process in uninterruptible sleep), and
		// waiting for it would make the grace period a lie.
		left := child.LeftInGroup()
		a.logger.Warn("exiting with processes left in the child's process group after SIGKILL",
			logschema.Seconds("waited", supervisor.KillWait), zap.Strings("processes", left))
		how += fmt.Sprintf("; %d process(es) left in the child's process group after SIGKILL", len(left))
	}
	if err := child.ReturnTerminal(); err != nil {
		a.logger.Debug("cannot take the terminal back", zap.Error(err))
	}
	a.health.Set(checkChild, false, "exited")
	code := a.cfg.exitCodeMap.Map(supervisor.ExitCode(child.FinalStatus()))
	a.finish(child, code, how, "")
	return code
}

// waitDependencies waits for every --wait target. It returns ok=false with
// the exit code when lifecycled must end without starting the child.
func (a *app) waitDependencies(ctx context.Context) (int, bool) {
	if len(a.cfg.waits) == 0 {
		return 0, true
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-a.stop.first:
			cancel()
		case <-wctx.Done():
		}
	}()
	cfg := a.cfg.wait
	cfg.Logger = a.logger
	cfg.Metrics = a.probeMetrics
	cfg.Options = a.probeOptions()
	err := probes.WaitAll(wctx, a.cfg.waits, cfg)
	select {
	case <-a.stop.first:
		// A stop before the start ends here, as if the child had been
		// killed by that signal; a stop that was no signal is a success.
		sig, reason := a.stop.requested()
		code := 0
		if sig != 0 {
			code = 128 + int(sig)
		}
		a.logger.Info("stopped while waiting for dependencies", zap.String("reason", reason))
		a.finish(nil, code, "", "stopped while waiting for dependencies: "+reason)
		return code, false
	default:
	}
	if err != nil {
		a.fail("lifecycled: %v", err)
		a.finish(nil, exitWaitTimeout, "", err.Error())
		return exitWaitTimeout, false
	}
	return 0, true
}

// postStart runs the postStart hook right after the start, as the kubelet
// does, and returns why it failed ("" on success). If the child exits
// during the hook, the hook is cancelled and the child's exit wins.
func (a *app) postStart(ctx context.Context, child *supervisor.Child) string {
	if a.cfg.postStart != nil {
		hctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-child.Exited():
			case <-a.stop.first:
			case <-hctx.Done():
			}
			cancel()
		}()
		res := a.runner.Run(hctx, *a.cfg.postStart)
		interrupted := hctx.Err() != nil // read before cancel(), which sets it
		cancel()
		if res.Err != nil && !interrupted {
			msg := fmt.Sprintf("postStart hook failed: %v", res.Err)
			a.fail("lifecycled: %s", msg)
			return msg + " (phase starting)" // finish comes after the stop sequence
		}
		if res.Err != nil {
			return "" // the child exited or a stop came: the caller handles it
		}
	}
	a.health.Set(checkPostStart, true, "")
	a.health.SetStarted(true)
	close(a.startedUp)
	return ""
}

// stopChild runs the stop sequence; it reports whether SIGKILL was needed.
func (a *app) stopChild(ctx context.Context, child *supervisor.Child) bool {
	seq := drain.NewSequence(a.cfg.drain, child, a.runner, a.logger, a.drainMetrics, func(step string) {
		if step == drain.StepDraining {
			a.drainingNow()
			a.health.Set(checkShutdown, false, "draining")
			a.enterPhase("draining", nil, "")
		}
		a.logger.Info("stop sequence", zap.String("step", step))
	})
	return seq.Run(ctx, a.stop.second)
}

// enterPhase records a phase in the metrics, the tombstone and the hook log.
func (a *app) enterPhase(phase string, exitCode *int, signal string) {
	a.metrics.setPhase(phase)
	a.mu.Lock()
	pid := a.pid
	a.phase = phase
	a.mu.Unlock()
	a.hookLog.Phase(phase, pid) // queued: see drain.HookLog
	if a.cfg.tombstoneDir == "" {
		return
	}
	// The tombstone is written (and synced) on the files queue, in
	// order: a hung shared volume must not keep the stop signal from
	// being sent after the draining phase.
	t := drain.Tombstone{Name: a.cfg.name, Phase: phase, PID: pid, ExitCode: exitCode, Signal: signal, UpdatedAt: time.Now()}
	queued := a.files.Go(func() {
		if err := drain.WriteTombstone(a.cfg.tombstoneDir, t); err != nil {
			a.logger.Warn("cannot write tombstone", zap.String("dir", a.cfg.tombstoneDir), zap.Error(err))
		}
	})
	if !queued {
		a.logger.Warn("tombstone not written: earlier writes are still waiting for the volume",
			zap.String("dir", a.cfg.tombstoneDir), zap.String("phase", phase))
	}
}

// finish records the end: the exited phase, the termination message and the
// --on-exit-post calls. failure is set when the end was lifecycled's
// decision (a dependency, a hook, a start error); how says how the child
// ended otherwise.
func (a *app) finish(child *supervisor.Child, code int, how, failure string) {
	var sig string
	a.mu.Lock()
	phase := a.phase
	a.mu.Unlock()
	msg := failure
	if msg != "" && !strings.Contains(msg, "(phase ") {
		msg += " (phase " + phase + ")"
	}
	if child != nil {
		ws := child.FinalStatus()
		if ws.Signaled() {
			sig = supervisor.SignalName(ws.Signal())
		}
		end := fmt.Sprintf("child exited with code %d", ws.ExitStatus())
		if ws.Signaled() {
			end = fmt.Sprintf("child killed by %s", sig)
		}
		if mapped := supervisor.ExitCode(ws); mapped != code && failure == "" {
			end += fmt.Sprintf(" (exit code %d mapped to %d)", mapped, code)
		}
		if msg == "" {
			msg = end + " (phase " + phase + "); " + how
		} else {
			msg += "; " + end
		}
	}
	a.enterPhase("exited", &code, sig)
	if failure != "" {
		// The cause is already on stderr, as one line of its own.
		a.logger.Debug("exiting", zap.Int("exit_code", code), zap.String("reason", msg))
	} else {
		a.logger.Info("exiting", zap.Int("exit_code", code), zap.String("reason", msg))
	}
	if a.cfg.terminationLog != "" {
		// On the files queue, after the exited tombstone: bounded at
		// exit by filesFlushMax like it. The stderr tail waits there
		// too (at most tailWait), never on the stop path itself.
		a.files.Go(func() {
			if child != nil {
				msg = a.withStderrTail(msg, code)
			}
			if err := drain.WriteTerminationLog(a.cfg.terminationLog, msg); err != nil {
				a.logger.Warn("cannot write termination log", zap.String("path", a.cfg.terminationLog), zap.Error(err))
			}
		})
	}
	a.postOnExit()
}

// postOnExit tells the other containers of the pod (Istio's /quitquitquit,
// Linkerd's /shutdown) that the child is gone, each call bounded by 5 s.
func (a *app) postOnExit() {
	if len(a.cfg.onExitPost) == 0 {
		return
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	var wg sync.WaitGroup
	for _, u := range a.cfg.onExitPost {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
			if err == nil {
				req.Header.Set("User-Agent", userAgent())
				var resp *http.Response
				if resp, err = client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
					_ = resp.Body.Close()
					a.logger.Info("posted on exit", zap.String("url", u), zap.Int("http_status", resp.StatusCode))
					return
				}
			}
			a.logger.Warn("on-exit POST failed", zap.String("url", u), zap.Error(err))
		})
	}
	wg.Wait()
}

// healthHandler serves the probes' endpoints and the metrics.
func (a *app) healthHandler() http.Handler {
	mux := http.NewServeMux()
	h := a.health.Handler()
	for _, ep := range probes.Endpoints {
		mux.Handle(ep, h)
		mux.Handle(ep+"/", h) // ENDPOINT/CHECK
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(a.logger), Timeout: 5 * time.Second}))
	return mux
}

// adminHandler serves the loopback-only admin endpoints.
func (a *app) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /drain", func(w http.ResponseWriter, _ *http.Request) {
		a.logger.Info("drain requested", zap.String("from", "POST /drain"))
		a.health.Set(checkShutdown, false, "drained by POST /drain")
		_, _ = io.WriteString(w, "draining\n")
	})
	mux.HandleFunc("POST /quitquitquit", func(w http.ResponseWriter, _ *http.Request) {
		a.logger.Info("stop requested", zap.String("from", "POST /quitquitquit"))
		a.stop.request(0, "POST /quitquitquit")
		_, _ = io.WriteString(w, "stopping\n")
	})
	return adminGuard(mux)
}

// fail prints one line on stderr naming the cause of a failure that is not
// the child's.
func (a *app) fail(format string, args ...any) {
	_, _ = io.WriteString(a.stderr, sprintfLine(format, args...))
}
