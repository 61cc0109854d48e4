package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// runOptions holds every flag of `lifecycled run`, as given; validation into
// typed values happens in newRunConfig.
type runOptions struct {
	Config    string
	LogFormat string
	LogLevel  string
	Name      string

	SingleChild bool
	SignalMap   stringList
	StopSignal  string
	ExitCodeMap stringList
	GracePeriod time.Duration

	Wait         stringList
	WaitInterval time.Duration
	WaitTimeout  time.Duration

	Ready                 string
	ReadyPeriod           time.Duration
	ReadyTimeout          time.Duration
	ReadyInitialDelay     time.Duration
	ReadySuccessThreshold int
	ReadyFailureThreshold int

	Live                 string
	LivePeriod           time.Duration
	LiveTimeout          time.Duration
	LiveInitialDelay     time.Duration
	LiveSuccessThreshold int
	LiveFailureThreshold int

	Listen      string
	AdminListen string

	PostStart      string
	PostStartHTTP  string
	PreStop        string
	PreStopHTTP    string
	PostStartSleep time.Duration
	PreStopSleep   time.Duration
	HookTimeout    time.Duration

	DrainDelay             time.Duration
	DrainConnections       int
	DrainTimeout           time.Duration
	TerminationGracePeriod time.Duration

	HookLogDir     string
	TerminationLog string
	TombstoneDir   string
	ExitWith       stringList
	OnExitPost     stringList

	Command []string
}

// stringList is a repeatable flag; from the environment it takes
// comma-separated values.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// durationFlag accepts Go durations and bare seconds, like parseDuration.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}
func (f durationFlag) Set(v string) error {
	d, err := parseDuration(v)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "bad duration "+strconv.Quote(v)+": "))
	}
	*f.d = d
	return nil
}

func defaultRunOptions() runOptions {
	return runOptions{
		LogFormat:             "json",
		LogLevel:              "info",
		StopSignal:            "TERM",
		GracePeriod:           10 * time.Second,
		WaitInterval:          time.Second,
		ReadyPeriod:           time.Second,
		ReadyTimeout:          time.Second,
		ReadySuccessThreshold: 1,
		ReadyFailureThreshold: 3,
		LivePeriod:            time.Second,
		LiveTimeout:           time.Second,
		LiveSuccessThreshold:  1,
		LiveFailureThreshold:  3,
		HookTimeout:           30 * time.Second,
		DrainTimeout:          30 * time.Second,
	}
}

// newRunFlagSet binds every run flag to o. The order of registration is the
// order of --help.
func newRunFlagSet(o *runOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("lifecycled", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dur := func(p *time.Duration, name, usage string) { fs.Var(durationFlag{p}, name, usage) }

	fs.StringVar(&o.Config, "config", o.Config, "read settings from this YAML `FILE` (Kubernetes field names)")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "log format on stderr: json or console")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&o.Name, "name", o.Name, "name used for the tombstone and hook log (default: COMMAND's base name)")

	fs.BoolVar(&o.SingleChild, "single-child", o.SingleChild, "forward signals to the child alone, not its process group")
	fs.Var(&o.SignalMap, "signal-map", "rewrite a forwarded signal, `FROM:TO` (repeatable), e.g. TERM:QUIT")
	fs.StringVar(&o.StopSignal, "stop-signal", o.StopSignal, "`SIGNAL` the stop sequence sends to the child")
	fs.Var(&o.ExitCodeMap, "exit-code-map", "rewrite the child's exit code, `FROM:TO` (repeatable), e.g. 143:0")
	dur(&o.GracePeriod, "grace-period", "time between the stop signal and SIGKILL")

	fs.Var(&o.Wait, "wait", "wait for `TARGET` to be up before starting COMMAND (repeatable)")
	dur(&o.WaitInterval, "wait-interval", "longest pause between two checks of a --wait target")
	dur(&o.WaitTimeout, "wait-timeout", "give up waiting after this long and exit 124 (0: never)")

	fs.StringVar(&o.Ready, "ready", o.Ready, "readiness probe `TARGET` of the child (tcp, http, grpc, exec:...)")
	dur(&o.ReadyPeriod, "ready-period", "readiness probe period")
	dur(&o.ReadyTimeout, "ready-timeout", "readiness probe timeout")
	dur(&o.ReadyInitialDelay, "ready-initial-delay", "delay before the first readiness probe")
	fs.IntVar(&o.ReadySuccessThreshold, "ready-success-threshold", o.ReadySuccessThreshold, "consecutive successes to become ready")
	fs.IntVar(&o.ReadyFailureThreshold, "ready-failure-threshold", o.ReadyFailureThreshold, "consecutive failures to become unready")

	fs.StringVar(&o.Live, "live", o.Live, "liveness probe `TARGET` of the child: /livez fails once it fails its threshold")
	dur(&o.LivePeriod, "live-period", "liveness probe period")
	dur(&o.LiveTimeout, "live-timeout", "liveness probe timeout")
	dur(&o.LiveInitialDelay, "live-initial-delay", "delay before the first liveness probe (counted from the end of postStart)")
	fs.IntVar(&o.LiveSuccessThreshold, "live-success-threshold", o.LiveSuccessThreshold, "consecutive successes to pass again (must be 1, as in Kubernetes)")
	fs.IntVar(&o.LiveFailureThreshold, "live-failure-threshold", o.LiveFailureThreshold, "consecutive failures to fail /livez")

	fs.StringVar(&o.Listen, "listen", o.Listen, "serve /readyz /livez /startupz /metrics on `ADDR` (e.g. :9090)")
	fs.StringVar(&o.AdminListen, "admin-listen", o.AdminListen, "serve POST /drain and /quitquitquit on loopback `ADDR`")

	fs.StringVar(&o.PostStart, "post-start", o.PostStart, "postStart hook `CMD` (JSON array: exec form; else /bin/sh -c)")
	fs.StringVar(&o.PostStartHTTP, "post-start-http", o.PostStartHTTP, "postStart hook: GET `URL`")
	fs.StringVar(&o.PreStop, "pre-stop", o.PreStop, "preStop hook `CMD` (JSON array: exec form; else /bin/sh -c)")
	fs.StringVar(&o.PreStopHTTP, "pre-stop-http", o.PreStopHTTP, "preStop hook: GET `URL`")
	dur(&o.PostStartSleep, "post-start-sleep", "postStart hook: sleep this long (Kubernetes' sleep handler)")
	dur(&o.PreStopSleep, "pre-stop-sleep", "preStop hook: sleep this long (Kubernetes' sleep handler)")
	dur(&o.HookTimeout, "hook-timeout", "longest run of one hook; a hook over it is killed and fails")

	dur(&o.DrainDelay, "drain-delay", "on SIGTERM, fail readiness and wait this long before stopping (5s in Kubernetes)")
	fs.IntVar(&o.DrainConnections, "drain-connections", o.DrainConnections, "on SIGTERM, wait until no established connection to local `PORT` remains")
	dur(&o.DrainTimeout, "drain-timeout", "longest wait for --drain-connections")
	dur(&o.TerminationGracePeriod, "termination-grace-period", "the pod's terminationGracePeriodSeconds: warn if the stop sequence cannot fit")

	fs.StringVar(&o.HookLogDir, "hook-log-dir", o.HookLogDir, "write NAME.hooks.log (JSON lines) in `DIR`")
	fs.StringVar(&o.TerminationLog, "termination-log", o.TerminationLog, "on exit write why the container ended to `PATH` (/dev/termination-log)")
	fs.StringVar(&o.TombstoneDir, "tombstone-dir", o.TombstoneDir, "write NAME.json with the current phase in `DIR`")
	fs.Var(&o.ExitWith, "exit-with", "stop once the tombstone of `NAME` says exited (repeatable)")
	fs.Var(&o.OnExitPost, "on-exit-post", "POST to `URL` after the child exits (repeatable), e.g. Istio's /quitquitquit")
	return fs
}

// envName is the environment variable that sets flag name.
func envName(name string) string {
	return "LIFECYCLED_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// isRepeatable reports whether the flag takes several values.
func isRepeatable(f *flag.Flag) bool {
	_, ok := f.Value.(*stringList)
	return ok
}

// parseRunOptions parses args and the environment in the contract's
// precedence: flag > environment > file > default. It returns the names of
// the flags set by flag or environment, which the config file must not
// override.
func parseRunOptions(args []string, getenv func(string) string) (runOptions, map[string]bool, error) {
	o := defaultRunOptions()
	fs := newRunFlagSet(&o)
	if err := fs.Parse(args); err != nil {
		if isHelp(err) {
			return o, nil, err
		}
		// The flag package names a bad flag as typed: a newline in it
		// would split the one line of the usage error.
		return o, nil, errors.New(strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(err.Error()))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f.Name))
		if set[f.Name] || v == "" || envErr != nil {
			return
		}
		vals := []string{v}
		if isRepeatable(f) {
			vals = strings.Split(v, ",")
		}
		for _, one := range vals {
			if err := fs.Set(f.Name, strings.TrimSpace(one)); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s: %v", v, envName(f.Name), err)
				return
			}
		}
		set[f.Name] = true
	})
	if envErr != nil {
		return o, nil, envErr
	}
	o.Command = fs.Args()
	return o, set, nil
}

// printRunUsage writes --help: the commands, then every flag with its
// environment variable.
func printRunUsage(w io.Writer) {
	o := defaultRunOptions()
	fs := newRunFlagSet(&o)
	fmt.Fprint(w, `lifecycled makes containers start and stop gracefully.

Usage:
  lifecycled [FLAGS] -- COMMAND [ARG...]   supervise COMMAND (also: lifecycled run ...)
  lifecycled wait [FLAGS] TARGET...        block until every TARGET is up (exit 0, 124 on timeout)
  lifecycled probe [FLAGS] TARGET          check TARGET once (exit 0 up, 1 down)
  lifecycled sleep DURATION                sleep, then exit 0 (a preStop hook without /bin/sleep)
  lifecycled explain [FLAGS] [-- COMMAND]  print the startup and shutdown timeline and budget check
  lifecycled version                       print version, commit, Go version

TARGET: tcp://HOST:PORT  http(s)://HOST[:PORT]/PATH  unix:///PATH  file:///PATH
        dns://NAME  grpc://HOST:PORT[/SERVICE]  exec:COMMAND (--ready only)

Exit codes: the child's code; 128+N if killed by signal N; 2 usage error;
124 dependency timeout; 125 postStart failed; 126 not executable; 127 not found.

Flags (each also as environment variable LIFECYCLED_<FLAG>, e.g. LIFECYCLED_DRAIN_DELAY=5s;
repeatable flags take comma-separated values there). Precedence: flag > env > --config > default.
`)
	printFlags(w, fs)
}

// printFlags lists every flag as --name ARG, its meaning, default and
// environment variable.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		switch {
		case arg == "value":
			arg = "DURATION"
		case arg == "string", arg == "int":
			arg = strings.ToUpper(arg)
		}
		if _, ok := f.Value.(interface{ IsBoolFlag() bool }); ok {
			arg = ""
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "  --%s %s\n        %s%s [%s]\n", f.Name, arg, usage, def, envName(f.Name))
	})
}

func isHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }
