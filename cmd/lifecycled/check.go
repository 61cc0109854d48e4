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
	if errors.Is(err, settings.ErrHelp) {
		settings.PrintWaitUsage(stdout)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "wait: %v", err)
	}
	targets, code := parseTargets(w.Targets, stderr, "wait")
	if targets == nil {
		return code
	}
	if w.Interval <= 0 {
		return usageError(stderr, "wait: --interval must be more than 0")
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
	err = probes.WaitAll(ctx, targets, probes.WaitConfig{
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
	if errors.Is(err, settings.ErrHelp) {
		settings.PrintProbeUsage(stdout)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "probe: %v", err)
	}
	if len(p.Targets) != 1 {
		return usageError(stderr, "probe takes exactly one TARGET")
	}
	targets, code := parseTargets(p.Targets, stderr, "probe")
	if targets == nil {
		return code
	}
	if p.Timeout <= 0 {
		return usageError(stderr, "probe: --timeout must be more than 0")
	}
	sctx, cancel, got := signalContext(context.Background())
	defer cancel()
	ctx, cancelCheck := context.WithTimeout(sctx, p.Timeout)
	defer cancelCheck()
	err = probes.Check(ctx, targets[0], probes.Options{UserAgent: userAgent()})
	if got() != 0 {
		return 128 + int(got())
	}
	if err != nil {
		_, _ = io.WriteString(stderr, redact.Line("lifecycled: %s is down: %v", targets[0], err))
		return 1
	}
	return exitOK
}

// parseTargets parses the positional targets of wait and probe; on error it
// prints the usage line and returns nil and the exit code.
func parseTargets(args []string, stderr io.Writer, cmd string) ([]probes.Target, int) {
	if len(args) == 0 {
		return nil, usageError(stderr, "%s needs at least one TARGET", cmd)
	}
	var ts []probes.Target
	for _, a := range args {
		t, err := probes.ParseTarget(a, false)
		if err != nil {
			return nil, usageError(stderr, "%s: %v", cmd, err)
		}
		ts = append(ts, t)
	}
	return ts, 0
}
