package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/internal/background"
	"github.com/lifecycled/lifecycled/internal/earlysignal"
	"github.com/lifecycled/lifecycled/internal/httpserve"
	"github.com/lifecycled/lifecycled/internal/stderrguard"
	"github.com/lifecycled/lifecycled/lifecycle"
	"github.com/lifecycled/lifecycled/settings"
	"github.com/lifecycled/lifecycled/supervisor"
)

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

	guard := stderrguard.New(stderr)
	stderr = guard
	cfg, code, ok := loadRunConfig(args, os.Environ(), os.Stdout, stderr)
	if !ok {
		return code
	}
	settings.UnsetOwnEnv()
	// From here on nothing writes to stderr in line: a stderr nobody
	// reads must not block the stop (package background).
	logs := background.New(logQueueLines)
	defer logs.Close(logFlushMax)
	logger, err := newLogger(cfg.LogFormat, cfg.LogLevel, logs.Writer(stderr))
	if err != nil {
		return usageError(logs.Writer(stderr), "%v", err)
	}
	logs.OnDrained = func(n uint64) {
		logger.Warn("dropped log lines: stderr was not being read", zap.Uint64("lines", n))
	}
	return runActors(cfg, logger, logs, guard, sigs)
}

// loadRunConfig parses flags, environment and config file. It returns
// ok=false with the exit code when lifecycled must stop here (--help, or a
// usage error already printed).
//
// environ is the environment (os.Environ): an unknown LIFECYCLED_
// variable in it is a usage error, named before any other error, which
// it may well explain (LIFECYCLED_DRAIN_DEALY and "--drain-quiet needs
// --drain-delay").
func loadRunConfig(args []string, environ []string, stdout, stderr io.Writer) (*settings.Run, int, bool) {
	s, err := settings.Load(args, settings.LookupEnv(environ), settings.ReadFile)
	if errors.Is(err, settings.ErrHelp) {
		settings.PrintUsage(stdout)
		return nil, exitOK, false
	}
	if err := settings.CheckEnv(environ); err != nil {
		return nil, usageError(stderr, "%v", err), false
	}
	if err != nil {
		return nil, usageError(stderr, "%v", err), false
	}
	cfg, err := s.Validate()
	if err != nil {
		return nil, usageError(stderr, "%v", err), false
	}
	ver, rev := buildVersion()
	cfg.Config.UserAgent, cfg.Config.Version, cfg.Config.Revision = userAgent(), ver, rev
	return cfg, 0, true
}

func userAgent() string {
	v, _ := buildVersion()
	return "lifecycled/" + v
}

// exitError ends the actor group with the process's exit code.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// runActors wires the lifecycle's actors into one run.Group and returns the
// exit code: the lifecycle actor decides it; the others serve it and stop
// when it is done.
//
// Every line lifecycled writes from here on is a record of logger (one
// stream, in --log-format), which writes to the guarded stderr
// (internal/stderrguard) through logs, so that a stderr nobody reads never
// blocks an actor; logs.Dropped counts what it had to drop.
func runActors(cfg *settings.Run, logger *zap.Logger, logs *background.Queue, guard *stderrguard.Guard, sigs <-chan os.Signal) int {
	subreaperErr := supervisor.BecomeSubreaper() // before the child starts: its orphans come here
	// Metrics are registered only where /metrics serves them (--listen);
	// without it they are kept, registered nowhere, for free.
	var reg *prometheus.Registry
	var registerer prometheus.Registerer // nil: promauto registers nowhere
	if cfg.Listen != "" {
		reg = prometheus.NewRegistry()
		registerer = reg
	}
	reaped := promauto.With(registerer).NewCounter(prometheus.CounterOpts{
		Name: "lifecycled_zombies_reaped_total", Help: "Adopted orphans reaped (not counting the child itself).",
	})
	promauto.With(registerer).NewCounterFunc(prometheus.CounterOpts{
		Name: "lifecycled_log_lines_dropped_total",
		Help: "Lines of lifecycled's own log dropped because stderr was not being read.",
	}, func() float64 { return float64(logs.Dropped()) })
	reaper := supervisor.NewReaper(logger, reaped.Inc)
	lc := lifecycle.New(cfg.Config, lifecycle.Deps{
		Logger: logger, Registry: reg, Reaper: reaper, ChildStderr: guard,
	})

	// The addresses are bound before the child starts: a busy one is a
	// usage error (exit 2), not a child started and stopped again.
	servers, err := httpserve.BindAll(
		httpserve.Endpoint{Addr: cfg.Listen, Handler: lc.Endpoints},
		httpserve.Endpoint{Addr: cfg.AdminListen, Loopback: true, Handler: lc.Admin, MaxBody: httpserve.AdminMaxBody},
	)
	if err != nil {
		logger.Error("cannot listen", zap.Error(err))
		return exitUsage
	}

	// Fork first: what follows only serves the run, and runs beside the
	// app rather than before it (issue 13: start-up over the Go floor).
	lc.StartEarly()
	logStartup(logger, cfg)
	if subreaperErr != nil {
		logger.Warn("cannot become the reaper of the child's orphans", zap.Error(subreaperErr))
	}
	if cfg.TerminationGrace > 0 {
		if err := cfg.Budget().Check(); err != nil {
			logger.Warn("stop sequence does not fit --termination-grace-period", zap.Error(err))
		}
	}
	if reg != nil {
		// /metrics never exposes the global default registry, so nothing
		// a library registers behind our back shows up. These are the
		// very collectors package collectors returns (it only wraps
		// them), called here directly because importing that package
		// links database/sql in for its DB stats collector, and every
		// start of lifecycled would pay its package initialisation.
		reg.MustRegister(
			prometheus.NewGoCollector(),                                       //nolint:staticcheck // SA1019: see above
			prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}), //nolint:staticcheck // SA1019: see above
		)
	}

	// The reaper is no actor: it must outlive them all, since a hook or an
	// exec probe cancelled at the end still waits for its status.
	reapCtx, stopReaping := context.WithCancel(context.Background())
	reaperDone := make(chan struct{})
	go func() { defer close(reaperDone); _ = reaper.Run(reapCtx) }()
	defer func() { stopReaping(); <-reaperDone }()

	var g run.Group
	actor := func(execute func(ctx context.Context) error) {
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return execute(ctx) }, func(error) { cancel() })
	}
	actor(func(ctx context.Context) error { return handleSignals(ctx, sigs, guard, lc) })
	for _, s := range servers {
		srv := httpserve.NewServer(s.Handler(), s.MaxBody, logger)
		actor(func(ctx context.Context) error { return httpserve.Serve(ctx, srv, s.Listener) })
	}
	if cfg.Config.Ready != nil {
		actor(lc.ProbeReadiness)
	}
	if cfg.Config.Live != nil {
		actor(lc.ProbeLiveness)
	}
	if len(cfg.Config.ExitWith) > 0 {
		actor(lc.WatchExitWith)
	}
	// The lifecycle actor is never cut short: when another actor fails,
	// its context ends and it stops the child as on SIGTERM, so no child
	// outlives us.
	lifeCtx, endLife := context.WithCancelCause(context.Background())
	g.Add(func() error { return exitError{lc.Run(lifeCtx)} }, endLife)

	err = g.Run()
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	logger.Error("lifecycled failed", zap.Error(err))
	return 1
}

// handleSignals is the signal actor: every signal caught goes to the
// lifecycle, which stops on SIGTERM and SIGINT and forwards the rest.
//
// What sigs holds when the actor starts was caught while lifecycled was
// starting: before the child, which StartEarly forks before the actors run,
// or in its first moments. Those signals go to SignalEarly and wait for the
// child's handlers, as the ones that came before the start do; sent at
// once, a SIGHUP would kill a shell before its trap.
func handleSignals(ctx context.Context, sigs <-chan os.Signal, guard *stderrguard.Guard, lc *lifecycle.Lifecycle) error {
	handle := func(s os.Signal, to func(syscall.Signal)) {
		sig := s.(syscall.Signal)
		if sig == syscall.SIGPIPE && guard.OwnSIGPIPE() {
			return // lifecycled's own: see internal/stderrguard
		}
		to(sig)
	}
	for range len(sigs) {
		handle(<-sigs, lc.SignalEarly)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-sigs:
			handle(s, lc.Signal)
		}
	}
}

// logStartup writes the one start-up line: what runs (version, commit, Go)
// and with which effective settings, after flags, environment and file, so
// that a log search finds how a container was configured without its spec.
func logStartup(logger *zap.Logger, cfg *settings.Run) {
	ver, rev := buildVersion()
	if rev == "" {
		rev = "unknown"
	}
	fields := []zap.Field{
		zap.String("version", ver),
		zap.String("commit", rev),
		zap.String("go_version", runtime.Version()),
	}
	if cfg.Settings != nil {
		fields = append(fields, zap.Object("settings", cfg.Settings))
	}
	logger.Info("starting", fields...)
}
