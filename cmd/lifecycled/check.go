package main

import (
	"context"
	"errors"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/internal/background"
	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/probes"
	"github.com/lifecycled/lifecycled/settings"
)

// waitMain is `lifecycled wait TARGET...`, an init container's job: exit 0
// once every target is up, 124 on --timeout, 2 on a bad target.
func waitMain(args []string, environ []string, stdout, stderr io.Writer) int {
	w, err := settings.ParseWait(args, environ)
	if code, done := unparsed(err, stdout, stderr, settings.PrintWaitUsage); done {
		return code
	}
	// Queued, as in run: a stderr nobody reads must not keep a SIGTERM
	// from ending the wait.
	logs := background.New(logQueueLines)
	defer logs.Close(logFlushMax)
	logger, err := newLogger(w.LogFormat, w.LogLevel, logs.Writer(stderr))
	if err != nil {
		return usageError(stderr, "wait: %v", err)
	}
	// SIGTERM or SIGINT ends the wait at once, with 128+N as a shell has it.
	ctx, cancel, got := signalContext(context.Background())
	defer cancel()
	err = probes.WaitAll(ctx, w.Targets, probes.WaitConfig{
		MaxInterval: w.Interval, Timeout: w.Timeout, ProgressEvery: 5 * time.Second,
		Logger: logger, Options: probes.Options{UserAgent: userAgent()},
	})
	var notUp *probes.NotUpError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &notUp):
		logger.Error("gave up waiting for dependencies", zap.Error(err))
		return exitWaitTimeout
	case got() != 0:
		return 128 + int(got())
	default:
		logger.Error("wait failed", zap.Error(err))
		return 1
	}
}

// probeMain is `lifecycled probe TARGET`: one check, for a kubelet exec
// probe in an image with no shell. Exit 0 up, 1 down, 2 bad usage.
func probeMain(args []string, environ []string, stdout, stderr io.Writer) int {
	p, err := settings.ParseProbe(args, environ)
	if code, done := unparsed(err, stdout, stderr, settings.PrintProbeUsage); done {
		return code
	}
	sctx, cancel, got := signalContext(context.Background())
	defer cancel()
	ctx, cancelCheck := context.WithTimeout(sctx, p.Timeout)
	defer cancelCheck()
	err = probes.Check(ctx, p.Target, probes.Options{UserAgent: userAgent()})
	if got() != 0 {
		return 128 + int(got())
	}
	if err != nil {
		_, _ = io.WriteString(stderr, redact.Line("lifecycled: %s is down: %v", p.Target, err))
		return 1
	}
	return exitOK
}

// unparsed ends a subcommand whose settings could not be read: on --help
// it prints usage on stdout (exit 0), on an error its one line (exit 2).
func unparsed(err error, stdout, stderr io.Writer, usage func(io.Writer)) (int, bool) {
	switch {
	case errors.Is(err, settings.ErrHelp):
		usage(stdout)
		return exitOK, true
	case err != nil:
		return usageError(stderr, "%v", err), true
	}
	return 0, false
}
