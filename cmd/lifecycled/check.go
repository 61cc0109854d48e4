package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/internal/background"
	"github.com/lifecycled/lifecycled/probes"
)

// waitMain is `lifecycled wait TARGET...`, an init container's job: exit 0
// once every target is up, 124 on --timeout, 2 on a bad target.
func waitMain(args []string, environ []string, stdout, stderr io.Writer) int {
	var timeout, interval time.Duration
	var logFormat, logLevel string
	decls := []setting{
		withEnv(duration(&timeout, "timeout", 0, "give up after this long and exit 124 (0: never)"), "--wait-timeout"),
		withEnv(duration(&interval, "interval", time.Second, "longest pause between two checks of a target"), "--wait-interval"),
		str(&logFormat, "log-format", "FORMAT", "json", "log format on stderr: json or console"),
		str(&logLevel, "log-level", "LEVEL", "info", "log level: debug, info, warn, error"),
	}
	rest, err := parseSubcommand(decls, args, environ)
	if isHelp(err) {
		fmt.Fprint(stdout, `lifecycled wait blocks until every TARGET is up: an init container's job.

Usage:
  lifecycled wait [FLAGS] TARGET...

Each TARGET is retried with exponential backoff from 50ms up to --interval.
Exit codes: 0 all up; 124 --timeout reached; 2 usage error; 128+N on signal N.

Flags (each also as the environment variable named, as for lifecycled run):
`)
		printFlags(stdout, decls)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "wait: %v", err)
	}
	targets, code := parseTargets(rest, stderr, "wait")
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
	var timeout time.Duration
	decls := []setting{
		withEnv(duration(&timeout, "timeout", time.Second, "longest time the check may take"), "--ready-timeout"),
	}
	rest, err := parseSubcommand(decls, args, environ)
	if isHelp(err) {
		fmt.Fprint(stdout, `lifecycled probe checks TARGET once: a kubelet exec probe in an image with no shell.

Usage:
  lifecycled probe [FLAGS] TARGET

Exit codes: 0 up; 1 down; 2 usage error; 128+N on signal N.

Flags (each also as the environment variable named, as for lifecycled run):
`)
		printFlags(stdout, decls)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "probe: %v", err)
	}
	if len(rest) != 1 {
		return usageError(stderr, "probe takes exactly one TARGET")
	}
	targets, code := parseTargets(rest, stderr, "probe")
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
	err = probes.Check(ctx, targets[0], probes.Options{UserAgent: userAgent()})
	if got() != 0 {
		return 128 + int(got())
	}
	if err != nil {
		_, _ = io.WriteString(stderr, sprintfLine("lifecycled: %s is down: %v", targets[0], err))
		return 1
	}
	return exitOK
}

// parseSubcommand reads the flags of wait or probe, then the environment,
// and returns the arguments after the flags. A LIFECYCLED_ variable of a
// run flag is known here too (a pod may set the same environment for its
// init container), but one of no flag is an error, as for run.
func parseSubcommand(decls []setting, args []string, environ []string) ([]string, error) {
	given, rest, err := parseFlags(decls, args)
	if err != nil {
		return nil, err
	}
	if err := checkEnv((&settings{}).declare(), environ); err != nil {
		return nil, err
	}
	return rest, applyEnv(decls, lookupEnv(environ), given)
}

// withEnv gives a subcommand's setting the environment variable of the run
// flag it stands for, so that one LIFECYCLED_ variable means one thing.
func withEnv(s setting, runFlag string) setting {
	s.env = envName(strings.TrimPrefix(runFlag, "--"))
	return s
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
