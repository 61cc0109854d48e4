package settings

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Wait is the settings of `lifecycled wait`. Its flags take the
// LIFECYCLED_ variables of the run flags they stand for
// (LIFECYCLED_WAIT_TIMEOUT for --timeout), so that one variable means one
// thing; --log-format and --log-level are run's own declarations.
type Wait struct {
	Timeout, Interval   time.Duration
	LogFormat, LogLevel string
	// Targets are the arguments after the flags, not yet parsed.
	Targets []string
}

func (w *Wait) declare() []setting {
	return []setting{
		withEnv(duration(&w.Timeout, "timeout", 0, "give up after this long and exit 124 (0: never)"), "wait-timeout"),
		withEnv(duration(&w.Interval, "interval", time.Second, "longest pause between two checks of a target"), "wait-interval"),
		logFormat(&w.LogFormat),
		logLevel(&w.LogLevel),
	}
}

// ParseWait reads wait's flags in args, then the environment (KEY=VALUE,
// as os.Environ).
func ParseWait(args, environ []string) (*Wait, error) {
	w := &Wait{}
	rest, err := parseSubcommand(w.declare(), args, environ)
	w.Targets = rest
	return w, err
}

// PrintWaitUsage writes `lifecycled wait --help`.
func PrintWaitUsage(out io.Writer) {
	fmt.Fprint(out, `lifecycled wait blocks until every TARGET is up: an init container's job.

Usage:
  lifecycled wait [FLAGS] TARGET...

Each TARGET is retried with exponential backoff from 50ms up to --interval.
Exit codes: 0 all up; 124 --timeout reached; 2 usage error; 128+N on signal N.

Flags (each also as the environment variable named, as for lifecycled run):
`)
	printFlags(out, new(Wait).declare())
}

// ProbeCheck is the settings of `lifecycled probe`: its --timeout takes
// LIFECYCLED_READY_TIMEOUT.
type ProbeCheck struct {
	Timeout time.Duration
	// Targets are the arguments after the flags, not yet parsed.
	Targets []string
}

func (p *ProbeCheck) declare() []setting {
	return []setting{
		withEnv(duration(&p.Timeout, "timeout", time.Second, "longest time the check may take"), "ready-timeout"),
	}
}

// ParseProbe reads probe's flags in args, then the environment (KEY=VALUE,
// as os.Environ).
func ParseProbe(args, environ []string) (*ProbeCheck, error) {
	p := &ProbeCheck{}
	rest, err := parseSubcommand(p.declare(), args, environ)
	p.Targets = rest
	return p, err
}

// PrintProbeUsage writes `lifecycled probe --help`.
func PrintProbeUsage(out io.Writer) {
	fmt.Fprint(out, `lifecycled probe checks TARGET once: a kubelet exec probe in an image with no shell.

Usage:
  lifecycled probe [FLAGS] TARGET

Exit codes: 0 up; 1 down; 2 usage error; 128+N on signal N.

Flags (each also as the environment variable named, as for lifecycled run):
`)
	printFlags(out, new(ProbeCheck).declare())
}

// parseSubcommand sets decls to their defaults, reads the flags of wait or
// probe, then the environment, and returns the arguments after the flags.
// A LIFECYCLED_ variable of a run flag is known here too (a pod may set
// the same environment for its init container), but one of no flag is an
// error, as for run.
func parseSubcommand(decls []setting, args []string, environ []string) ([]string, error) {
	setDefaults(decls)
	given, rest, err := parseFlags(decls, args)
	if err != nil {
		return nil, err
	}
	if err := CheckEnv(environ); err != nil {
		return nil, err
	}
	return rest, applyEnv(decls, LookupEnv(environ), given)
}

// withEnv gives a subcommand's setting the environment variable of the run
// flag it stands for, so that one LIFECYCLED_ variable means one thing.
func withEnv(s setting, runFlag string) setting {
	s.env = envName(strings.TrimPrefix(runFlag, "--"))
	return s
}
