package settings

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lifecycled/lifecycled/probes"
)

// Wait is the settings of `lifecycled wait`. Its flags take the
// LIFECYCLED_ variables of the run flags they stand for
// (LIFECYCLED_WAIT_TIMEOUT for --timeout), so that one variable means one
// thing; --log-format and --log-level are run's own declarations.
type Wait struct {
	Timeout, Interval   time.Duration
	LogFormat, LogLevel string
	Targets             []probes.Target
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
// as os.Environ), then the TARGETs. An error is the usage error to print,
// naming wait.
func ParseWait(args, environ []string) (*Wait, error) {
	w := &Wait{}
	rest, err := parseSubcommand("wait", w.declare(), args, environ)
	var targets []probes.Target
	if err == nil {
		targets, err = parseTargets("wait", rest)
	}
	if err == nil && w.Interval <= 0 {
		err = errors.New("wait: --interval must be more than 0")
	}
	w.Targets = targets
	return w, err
}

// ProbeCheck is the settings of `lifecycled probe`: its --timeout takes
// LIFECYCLED_READY_TIMEOUT.
type ProbeCheck struct {
	Timeout time.Duration
	Target  probes.Target
}

func (p *ProbeCheck) declare() []setting {
	return []setting{
		withEnv(duration(&p.Timeout, "timeout", time.Second, "longest time the check may take"), "ready-timeout"),
	}
}

// ParseProbe reads probe's flags in args, then the environment (KEY=VALUE,
// as os.Environ), then the one TARGET. An error is the usage error to
// print, naming probe.
func ParseProbe(args, environ []string) (*ProbeCheck, error) {
	p := &ProbeCheck{}
	rest, err := parseSubcommand("probe", p.declare(), args, environ)
	if err != nil {
		return p, err
	}
	if len(rest) != 1 {
		return p, errors.New("probe takes exactly one TARGET")
	}
	targets, err := parseTargets("probe", rest)
	if err != nil {
		return p, err
	}
	if p.Timeout <= 0 {
		return p, errors.New("probe: --timeout must be more than 0")
	}
	p.Target = targets[0]
	return p, nil
}

// PrintWaitUsage writes `lifecycled wait --help`.
func PrintWaitUsage(out io.Writer) {
	printSubcommandUsage(out, `lifecycled wait blocks until every TARGET is up: an init container's job.

Usage:
  lifecycled wait [FLAGS] TARGET...

Each TARGET is retried with exponential backoff from 50ms up to --interval.
Exit codes: 0 all up; 124 --timeout reached; 2 usage error; 128+N on signal N.
`, new(Wait).declare())
}

// PrintProbeUsage writes `lifecycled probe --help`.
func PrintProbeUsage(out io.Writer) {
	printSubcommandUsage(out, `lifecycled probe checks TARGET once: a kubelet exec probe in an image with no shell.

Usage:
  lifecycled probe [FLAGS] TARGET

Exit codes: 0 up; 1 down; 2 usage error; 128+N on signal N.
`, new(ProbeCheck).declare())
}

func printSubcommandUsage(out io.Writer, intro string, decls []setting) {
	fmt.Fprint(out, intro+"\nFlags (each also as the environment variable named, as for lifecycled run):\n")
	printFlags(out, decls)
}

// parseSubcommand sets decls to their defaults, reads the flags of wait or
// probe (cmd), then the environment, and returns the arguments after the
// flags. A LIFECYCLED_ variable of a run flag is known here
// too (a pod may set the same environment for its init container), but
// one of no flag is an error, as for run.
func parseSubcommand(cmd string, decls []setting, args []string, environ []string) ([]string, error) {
	setDefaults(decls)
	given, rest, err := parseFlags(decls, args)
	if err == nil {
		err = CheckEnv(environ)
	}
	if err == nil {
		err = applyEnv(decls, LookupEnv(environ), given)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return rest, nil
}

// parseTargets parses the TARGETs of wait or probe (cmd), at least one.
func parseTargets(cmd string, args []string) ([]probes.Target, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%s needs at least one TARGET", cmd)
	}
	var ts []probes.Target
	for _, a := range args {
		t, err := probes.ParseTarget(a, false)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// withEnv gives a subcommand's setting the environment variable of the run
// flag it stands for, so that one LIFECYCLED_ variable means one thing.
func withEnv(s setting, runFlag string) setting {
	s.env = envName(strings.TrimPrefix(runFlag, "--"))
	return s
}
