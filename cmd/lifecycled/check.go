package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"time"

	"github.com/lifecycled/lifecycled/internal/background"
	"github.com/lifecycled/lifecycled/probes"
)

// waitMain is `lifecycled wait TARGET...`, an init container's job: exit 0
// once every target is up, 124 on --timeout, 2 on a bad target.
func waitMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("lifecycled wait", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	timeout, interval := time.Duration(0), time.Second
	logFormat, logLevel := "json", "info"
	fs.Var(durationFlag{&timeout}, "timeout", "give up after this long and exit 124 (0: never)")
	fs.Var(durationFlag{&interval}, "interval", "longest pause between two checks of a target")
	fs.StringVar(&logFormat, "log-format", logFormat, "json or console")
	fs.StringVar(&logLevel, "log-level", logLevel, "debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if isHelp(err) {
			fs.SetOutput(os.Stdout)
			_, _ = io.WriteString(os.Stdout, "Usage: lifecycled wait [--timeout DUR] [--interval DUR] TARGET...\n")
			fs.PrintDefaults()
			return exitOK
		}
		return usageError(stderr, "wait: %v", err)
	}
	targets, code := parseTargets(fs.Args(), stderr, "wait")
	if targets == nil {
		return code
	}
	if interval <= 0 {
		return usageError(stderr, "wait: --interval must be more than 0")
	}
	// Queued, as in run: a stderr nobody reads must not keep a SIGTERM
	// from ending the wait.
	logs := background.New(logQueueLines)
	defer logs.Close(logFlushMax)
	logger, err := newLogger(logFormat, logLevel, logs.Writer(stderr))
	if err != nil {
		return usageError(stderr, "wait: %v", err)
	}
	// SIGTERM or SIGINT ends the wait at once, with 128+N as a shell has it.
	ctx, cancel, got := signalContext(context.Background())
	defer cancel()
	err = probes.WaitAll(ctx, targets, probes.WaitConfig{
		MaxInterval: interval, Timeout: timeout, ProgressEvery: 5 * time.Second,
		Logger: logger, Options: probes.Options{UserAgent: userAgent()},
	})
	var notUp *probes.NotUpError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &notUp):
		_, _ = io.WriteString(logs.Writer(stderr), sprintfLine("lifecycled: %v", err))
		return exitWaitTimeout
	case got() != 0:
		return 128 + int(got())
	default:
		_, _ = io.WriteString(logs.Writer(stderr), sprintfLine("lifecycled: wait: %v", err))
		return 1
	}
}

// probeMain is `lifecycled probe TARGET`: one check, for a kubelet exec
// probe in an image with no shell. Exit 0 up, 1 down, 2 bad usage.
func probeMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("lifecycled probe", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	timeout := time.Second
	fs.Var(durationFlag{&timeout}, "timeout", "longest time the check may take")
	if err := fs.Parse(args); err != nil {
		if isHelp(err) {
			fs.SetOutput(os.Stdout)
			_, _ = io.WriteString(os.Stdout, "Usage: lifecycled probe [--timeout DUR] TARGET\n")
			fs.PrintDefaults()
			return exitOK
		}
		return usageError(stderr, "probe: %v", err)
	}
	if fs.NArg() != 1 {
		return usageError(stderr, "probe takes exactly one TARGET")
	}
	targets, code := parseTargets(fs.Args(), stderr, "probe")
	if targets == nil {
		return code
	}
	if timeout <= 0 {
		return usageError(stderr, "probe: --timeout must be more than 0")
	}
	sctx, cancel, got := signalContext(context.Background())
	defer cancel()
	ctx, cancelCheck := context.WithTimeout(sctx, timeout)
	defer cancelCheck()
	err := probes.Check(ctx, targets[0], probes.Options{UserAgent: userAgent()})
	if got() != 0 {
		return 128 + int(got())
	}
	if err != nil {
		_, _ = io.WriteString(stderr, sprintfLine("lifecycled: %s is down: %v", targets[0], err))
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
