package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/oklog/run"
	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/supervisor"
)

// runMain is `lifecycled run`: parse, validate, then hand over to the actors.
func runMain(args []string, stderr io.Writer) int {
	// Catch every forwarded signal before anything else: a signal sent
	// while lifecycled is still parsing flags or waiting for dependencies
	// is remembered, and a Go PID 1 that does not handle SIGTERM would
	// exit with status 2.
	sigs := make(chan os.Signal, 1024)
	signal.Notify(sigs, osSignals(supervisor.ForwardedSignals())...)
	defer signal.Stop(sigs)

	opts, set, err := parseRunOptions(args, os.Getenv)
	if isHelp(err) {
		printRunUsage(os.Stdout)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	cfg, err := newRunConfig(opts, set)
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	logger, err := newLogger(cfg.logFormat, cfg.logLevel, stderr)
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	defer func() { _ = logger.Sync() }()
	return newApp(cfg, logger, stderr).run(sigs)
}

func osSignals(sigs []syscall.Signal) []os.Signal {
	out := make([]os.Signal, len(sigs))
	for i, s := range sigs {
		out[i] = s
	}
	return out
}

// exitError ends the actor group with the process's exit code.
type exitError struct{ code int }

func (e exitError) Error() string { return "exit" }

// stopRequest records requests to stop: the first starts the stop
// sequence, a second one (SIGTERM or SIGINT again) skips what is left of its
// waits.
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
// signal (admin endpoint, --exit-with).
func (s *stopRequest) request(sig syscall.Signal, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	switch s.n {
	case 1:
		s.sig, s.reason = sig, reason
		close(s.first)
	case 2:
		close(s.second)
	}
}

// signal returns the signal of the first request, if it was one.
func (s *stopRequest) signal() (syscall.Signal, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sig, s.reason
}

// app is one run of lifecycled: the configuration and the parts the actors
// share.
type app struct {
	cfg       *runConfig
	logger    *zap.Logger
	stderr    io.Writer
	reaper    *supervisor.Reaper
	forwarder *supervisor.Forwarder
	stop      *stopRequest
}

func newApp(cfg *runConfig, logger *zap.Logger, stderr io.Writer) *app {
	a := &app{cfg: cfg, logger: logger, stderr: stderr, stop: newStopRequest()}
	a.reaper = supervisor.NewReaper(logger, nil)
	a.forwarder = supervisor.NewForwarder(cfg.signalMap, nil)
	return a
}

// run adds the actors and returns the exit code of the first to finish,
// which is always the lifecycle actor unless something failed.
func (a *app) run(sigs <-chan os.Signal) int {
	if err := supervisor.BecomeSubreaper(); err != nil {
		a.logger.Warn("cannot reap orphans of the child", zap.Error(err))
	}
	var g run.Group
	{
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return a.reaper.Run(ctx) }, func(error) { cancel() })
	}
	{
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return a.handleSignals(ctx, sigs) }, func(error) { cancel() })
	}
	{
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return exitError{a.lifecycle(ctx)} }, func(error) { cancel() })
	}
	err := g.Run()
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
				if err := a.forwarder.Forward(sig); err != nil {
					a.logger.Warn("cannot forward signal", zap.String("signal", supervisor.SignalName(sig)), zap.Error(err))
				}
			}
		}
	}
}

// lifecycle is the container's life from start to end; it returns the exit
// code.
func (a *app) lifecycle(ctx context.Context) int {
	child, err := a.reaper.Start(supervisor.Spec{
		Argv:              a.cfg.command,
		SingleChild:       a.cfg.singleChild,
		ParentDeathSignal: syscall.SIGKILL,
	})
	if err != nil {
		var se *supervisor.StartError
		if errors.As(err, &se) {
			a.fail("lifecycled: %v", err)
			return se.Code
		}
		a.fail("lifecycled: start %s: %v", a.cfg.command[0], err)
		return 126
	}
	a.logger.Debug("child started", zap.Int("pid", child.Pid()), zap.Strings("command", a.cfg.command))
	if err := a.forwarder.Attach(child); err != nil {
		a.logger.Warn("cannot forward early signal", zap.Error(err))
	}

	select {
	case <-child.Exited():
		if killed := child.Terminate(ctx, a.cfg.stopSignal, a.cfg.gracePeriod); killed {
			a.logger.Warn("killed what was left of the child's process group after the grace period")
		}
	case <-a.stop.first:
		if killed := child.Terminate(ctx, a.cfg.stopSignal, a.cfg.gracePeriod); killed {
			a.logger.Warn("child killed after the grace period", zap.Duration("grace_period", a.cfg.gracePeriod))
		}
	}
	<-child.Exited()
	code := supervisor.ExitCode(child.Status())
	mapped := a.cfg.exitCodeMap.Map(code)
	a.logger.Info("child exited", zap.Int("pid", child.Pid()), zap.Int("code", code), zap.Int("exit_code", mapped))
	return mapped
}

// fail prints one line on stderr naming the cause of a failure that is not
// the child's.
func (a *app) fail(format string, args ...any) {
	_, _ = io.WriteString(a.stderr, sprintfLine(format, args...))
}
