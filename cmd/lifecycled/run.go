package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/lifecycle"
	"github.com/lifecycled/lifecycled/supervisor"
)

// runMain is `lifecycled run`: parse, validate, then hand over to the actors.
func runMain(args []string, stderr io.Writer) int {
	// Catch every forwarded signal before anything else: a signal sent
	// while lifecycled is still parsing flags or waiting for dependencies
	// is remembered, and a Go PID 1 that does not handle SIGTERM would
	// exit with status 2.
	sigs := make(chan os.Signal, 1024)
	// No signal.Stop: the process exits right after, and deregistering
	// fifty handlers costs a millisecond at every exit.
	signal.Notify(sigs, osSignals(supervisor.ForwardedSignals())...)

	guard := &epipeGuard{w: stderr, fd: -1}
	if f, ok := stderr.(*os.File); ok {
		guard.fd = int(f.Fd())
	}
	stderr = guard
	cfg, code, ok := loadRunConfig(args, os.Getenv, os.Stdout, stderr)
	if !ok {
		return code
	}
	logger, err := newLogger(cfg.logFormat, cfg.logLevel, stderr)
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	defer func() { _ = logger.Sync() }()
	return runActors(cfg, logger, stderr, guard, sigs)
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
	return cfg, 0, true
}

func osSignals(sigs []syscall.Signal) []os.Signal {
	out := make([]os.Signal, len(sigs))
	for i, s := range sigs {
		out[i] = s
	}
	return out
}

func userAgent() string { return "lifecycled/" + version }

// lifecycleConfig is what the lifecycle needs of the settings.
func (c *runConfig) lifecycleConfig() lifecycle.Config {
	return lifecycle.Config{
		Name:           c.name,
		Command:        c.command,
		SingleChild:    c.singleChild,
		SignalMap:      c.signalMap,
		ExitCodeMap:    c.exitCodeMap,
		Waits:          c.waits,
		Wait:           c.wait,
		Ready:          c.ready,
		PostStart:      c.postStart,
		Stop:           c.drain,
		HookLogDir:     c.hookLogDir,
		TerminationLog: c.terminationLog,
		TombstoneDir:   c.tombstoneDir,
		ExitWith:       c.exitWith,
		OnExitPost:     c.onExitPost,
		UserAgent:      userAgent(),
	}
}

// exitError ends the actor group with the process's exit code.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// runActors wires the lifecycle's actors into one run.Group and returns the
// exit code: the lifecycle actor decides it; the others serve it and stop
// when it is done.
func runActors(cfg *runConfig, logger *zap.Logger, stderr io.Writer, guard *epipeGuard, sigs <-chan os.Signal) int {
	if err := supervisor.BecomeSubreaper(); err != nil {
		logger.Warn("cannot become the reaper of the child's orphans", zap.Error(err))
	}
	if cfg.terminationGrace > 0 {
		if err := cfg.budget().Check(); err != nil {
			logger.Warn("stop sequence does not fit --termination-grace-period", zap.Error(err))
		}
	}
	reg := newRegistry(cfg.listen != "")
	reaped := promauto.With(reg).NewCounter(prometheus.CounterOpts{
		Name: "lifecycled_zombies_reaped_total", Help: "Adopted orphans reaped (not counting the child itself).",
	})
	reaper := supervisor.NewReaper(logger, reaped.Inc)
	lc := lifecycle.New(cfg.lifecycleConfig(), lifecycle.Deps{Logger: logger, Registry: reg, Reaper: reaper, Stderr: stderr})

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
	for _, s := range []struct {
		addr     string
		loopback bool
		handler  http.Handler
	}{
		{cfg.listen, false, lc.Endpoints()},
		{cfg.adminListen, true, lc.Admin()},
	} {
		if s.addr == "" {
			continue
		}
		ln, err := listen(s.addr, s.loopback)
		if err != nil {
			_, _ = io.WriteString(stderr, sprintfLine("lifecycled: %v", err))
			return exitUsage
		}
		srv := newHTTPServer(s.handler, logger)
		actor(func(ctx context.Context) error { return serve(ctx, srv, ln) })
	}
	if cfg.ready != nil {
		actor(lc.ProbeReadiness)
	}
	if len(cfg.exitWith) > 0 {
		actor(lc.WatchExitWith)
	}
	// The lifecycle actor is never cut short: when another actor fails,
	// its context ends and it stops the child as on SIGTERM, so no child
	// outlives us.
	lifeCtx, endLife := context.WithCancelCause(context.Background())
	g.Add(func() error { return exitError{lc.Run(lifeCtx)} }, endLife)

	err := g.Run()
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	logger.Error("lifecycled failed", zap.Error(err))
	return 1
}

// handleSignals is the signal actor: every signal caught goes to the
// lifecycle, which stops on SIGTERM and SIGINT and forwards the rest.
func handleSignals(ctx context.Context, sigs <-chan os.Signal, guard *epipeGuard, lc *lifecycle.Lifecycle) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-sigs:
			sig := s.(syscall.Signal)
			if sig == syscall.SIGPIPE && guard.ownSIGPIPE() {
				continue // lifecycled's own: see epipeGuard
			}
			lc.Signal(sig)
		}
	}
}

// newRegistry returns the private registry every metric goes to, with the
// Go and process collectors when it is served: /metrics never exposes the
// global default registry, so nothing a library registers behind our back
// shows up. Without --listen nobody reads the collectors, and building
// them costs start-up time.
func newRegistry(served bool) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	if served {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return reg
}
