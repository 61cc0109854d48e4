package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifecycled/lifecycled/hooks"
	"github.com/lifecycled/lifecycled/probes"
	"github.com/lifecycled/lifecycled/supervisor"
)

// settings is every setting of `lifecycled run` as given, before
// validation (newRunConfig). Each field is declared once, in declare, with
// its flag name (and so its LIFECYCLED_ variable), default, help and place
// in the config file: flags, environment and file all fill it through that
// one declaration, in the contract's precedence flag > env > file > default.
type settings struct {
	Config    string
	LogFormat string
	LogLevel  string
	Name      string

	SingleChild bool
	SignalMap   []string
	StopSignal  string
	ExitCodeMap []string
	GracePeriod time.Duration

	Wait         []string
	WaitInterval time.Duration
	WaitTimeout  time.Duration

	Ready probeSettings
	Live  probeSettings

	Listen      string
	AdminListen string

	PostStart   hookSettings
	PreStop     hookSettings
	HookTimeout time.Duration

	DrainDelay             time.Duration
	DrainConnections       int
	DrainTimeout           time.Duration
	TerminationGracePeriod time.Duration

	HookLogDir         string
	TerminationLog     string
	TerminationLogTail bool
	TerminationLogMax  int
	TombstoneDir       string
	ExitWith           []string
	OnExitPost         []string

	DrainQuiet time.Duration
	DrainMin   time.Duration
	// DrainReadiness is fail (the default: /readyz answers 503 from
	// SIGTERM on) or keep (it stays up while the sequence drains).
	DrainReadiness string

	Command []string
}

// probeSettings are a kubelet probe's: its target and parameters
// (--ready and --ready-*, readinessProbe in the file).
type probeSettings struct {
	Target           target
	Period           time.Duration
	Timeout          time.Duration
	InitialDelay     time.Duration
	SuccessThreshold int
	FailureThreshold int
}

// hookSettings are one lifecycle hook's handlers; at most one may be set
// (--post-start, --post-start-http, --post-start-sleep; lifecycle.postStart
// in the file).
type hookSettings struct {
	Exec  command
	HTTP  string
	Sleep time.Duration
}

// target is a parsed TARGET; the zero value is "not given".
type target struct {
	probes.Target
	set bool
}

// command is a hook command: the argv, and the text it was given as.
type command struct {
	Raw   string
	Argv  []string
	Shell bool
}

// setting declares one setting. Its default is what its value holds once
// declared; flag, environment and file write through value, so they
// cannot disagree on what a text means.
type setting struct {
	name  string // flag name, and the environment variable envName(name); "" for a file-only key
	env   string // the environment variable, when it is not envName(name)
	arg   string // the argument's name in --help ("" for a bool)
	help  string
	value value
	def   string // the default, as --help shows it

	// yaml is the setting's key in the config file, dotted when nested
	// ("drain.delay"); the first is the one --help names, others are
	// aliases.
	yaml []string
	// decode reads the file's value; nil reads a scalar (or a list of
	// scalars) through value, as the environment does.
	decode func(n *node) error
	// owns lists the keys of the mapping at yaml that decode reads (a
	// Kubernetes handler), so that they are not unknown fields.
	owns []string
	// yields lists the other flags whose being set by flag or environment
	// makes the file's value give way, as its own flag does.
	yields []string
}

// value is a setting's typed storage; Set parses a flag's or an
// environment variable's text, String prints it back as a flag's text.
type value interface {
	Set(string) error
	String() string
}

// declare sets s to the defaults and returns every setting bound to s. The
// order is the order of --help. Adding a setting is adding a field above
// and one entry here.
func (s *settings) declare() []setting {
	ds := []setting{
		str(&s.Config, "config", "FILE", "", "read settings from this YAML `FILE` (Kubernetes field names)"),
		str(&s.LogFormat, "log-format", "FORMAT", "json", "log format on stderr: json or console", "logFormat"),
		str(&s.LogLevel, "log-level", "LEVEL", "info", "log level: debug, info, warn, error", "logLevel"),
		str(&s.Name, "name", "NAME", "", "name used for the tombstone and hook log (default: COMMAND's base name)", "name"),

		boolean(&s.SingleChild, "single-child", "forward signals to the child alone, not its process group", "singleChild"),
		list(&s.SignalMap, "signal-map", "FROM:TO",
			"rewrite a forwarded signal, `FROM:TO` (repeatable), e.g. WINCH:USR1; TERM:X or INT:X makes X the stop signal", "signalMap"),
		withDefault(str(&s.StopSignal, "stop-signal", "SIGNAL", "",
			"`SIGNAL` the stop sequence sends to the child (TERM, or what --signal-map maps TERM/INT to; must agree with it)",
			"stopSignal", "lifecycle.stopSignal"), "TERM"),
		list(&s.ExitCodeMap, "exit-code-map", "FROM:TO", "rewrite the child's exit code, `FROM:TO` (repeatable), e.g. 143:0", "exitCodeMap"),
		duration(&s.GracePeriod, "grace-period", 10*time.Second, "time between the stop signal and SIGKILL (0: SIGKILL right after the stop signal)", "gracePeriod"),

		list(&s.Wait, "wait", "TARGET", "wait for `TARGET` to be up before starting COMMAND (repeatable)", "waitFor"),
		duration(&s.WaitInterval, "wait-interval", time.Second, "longest pause between two checks of a --wait target", "waitInterval"),
		duration(&s.WaitTimeout, "wait-timeout", 0, "give up waiting after this long and exit 124 (0: never)", "waitTimeout"),
	}
	ds = append(ds, probeSettingsDecl(&s.Ready, "ready", "readinessProbe", "readiness")...)
	ds = append(ds, probeSettingsDecl(&s.Live, "live", "livenessProbe", "liveness")...)
	ds = append(ds,
		str(&s.Listen, "listen", "ADDR", "", "serve /readyz /livez /startupz /metrics on `ADDR` (e.g. :9090)", "listen"),
		str(&s.AdminListen, "admin-listen", "ADDR", "", "serve POST /drain and /quitquitquit on loopback `ADDR`", "adminListen"),
	)
	ds = append(ds, hookSettingsDecl(&s.PostStart, "post-start", "lifecycle.postStart", "postStart")...)
	ds = append(ds, hookSettingsDecl(&s.PreStop, "pre-stop", "lifecycle.preStop", "preStop")...)
	ds = append(ds,
		duration(&s.HookTimeout, "hook-timeout", hooks.DefaultTimeout, "longest run of one hook; a hook over it is killed and fails", "hookTimeout"),

		duration(&s.DrainDelay, "drain-delay", 0, "on SIGTERM, fail readiness and wait this long before stopping (5s in Kubernetes)", "drain.delay"),
		integer(&s.DrainConnections, "drain-connections", "PORT", 0, "on SIGTERM, wait until no established connection to local `PORT` remains", "drain.connections"),
		duration(&s.DrainTimeout, "drain-timeout", 30*time.Second, "longest wait for --drain-connections (0: no wait)", "drain.timeout"),
		withDecode(duration(&s.TerminationGracePeriod, "termination-grace-period", 0,
			"the pod's terminationGracePeriodSeconds: warn if the stop sequence cannot fit", "terminationGracePeriodSeconds"),
			func(n *node) error { return n.seconds(&s.TerminationGracePeriod) }),

		str(&s.HookLogDir, "hook-log-dir", "DIR", "", "write NAME.hooks.log (JSON lines) in `DIR`", "hookLogDir"),
		str(&s.TerminationLog, "termination-log", "PATH", "", "on exit write why the container ended to `PATH` (/dev/termination-log)", "terminationMessagePath"),
		boolean(&s.TerminationLogTail, "termination-log-tail",
			"when the child fails, add the end of its stderr to --termination-log; the child's stderr becomes a pipe through lifecycled, not a TTY",
			"terminationMessageTail"),
		integer(&s.TerminationLogMax, "termination-log-max", "BYTES", maxTerminationLog,
			"most `BYTES` of the termination message (64-4096): in a pod of more than 3 containers the kubelet keeps only "+
				"12288 / (containers + init containers) of each; explain -f names the value", "terminationMessageMax"),
		str(&s.TombstoneDir, "tombstone-dir", "DIR", "", "write NAME.json with the current phase in `DIR`", "tombstoneDir"),
		list(&s.ExitWith, "exit-with", "NAME", "stop once the tombstone of `NAME` says exited (repeatable)", "exitWith"),
		list(&s.OnExitPost, "on-exit-post", "URL", "POST to `URL` after the child exits (repeatable), e.g. Istio's /quitquitquit", "onExitPost"),

		duration(&s.DrainQuiet, "drain-quiet", 0, "adaptive drain: end the drain delay once neither a new connection nor a request byte "+
			"reached the app's ports for this long (e.g. 1s; --drain-delay is the ceiling)", "drain.quiet"),
		duration(&s.DrainMin, "drain-min", 0, "adaptive drain: wait at least this long", "drain.min"),
		str(&s.DrainReadiness, "drain-readiness", "MODE", "fail",
			"/readyz while draining: fail (503 from SIGTERM on) or keep (stays 200 while the app serves: Kubernetes' serving condition, "+
				"for the last endpoints of a Service or of a node with externalTrafficPolicy: Local; 503 once --ready fails or the stop signal is sent)", "drain.readiness"),
	)
	return ds
}

// probeSettingsDecl declares a kubelet probe: --FLAG TARGET and its
// parameters, and FIELD in the file as a core/v1 Probe. Kubernetes' zero
// values mean its defaults, which are lifecycled's defaults too.
func probeSettingsDecl(p *probeSettings, flag, field, what string) []setting {
	return []setting{
		{
			name: flag, arg: "TARGET", value: &targetValue{&p.Target, true}, yaml: []string{field},
			help:   what + " probe `TARGET` of the child (tcp, http, grpc, exec:...)",
			decode: func(n *node) error { return n.probeHandler(&p.Target) },
			owns:   []string{"exec", "httpGet", "tcpSocket", "grpc"},
		},
		withDecode(duration(&p.Period, flag+"-period", time.Second, what+" probe period", field+".periodSeconds"),
			func(n *node) error { return n.probeSeconds(&p.Period, 1) }),
		withDecode(duration(&p.Timeout, flag+"-timeout", time.Second, what+" probe timeout", field+".timeoutSeconds"),
			func(n *node) error { return n.probeSeconds(&p.Timeout, 1) }),
		withDecode(duration(&p.InitialDelay, flag+"-initial-delay", 0, "delay before the first "+what+" probe", field+".initialDelaySeconds"),
			func(n *node) error { return n.probeSeconds(&p.InitialDelay, 0) }),
		withDecode(integer(&p.SuccessThreshold, flag+"-success-threshold", "INT", 1, "consecutive successes to become "+adjective(what, true), field+".successThreshold"),
			func(n *node) error { return n.probeCount(&p.SuccessThreshold) }),
		withDecode(integer(&p.FailureThreshold, flag+"-failure-threshold", "INT", 3, "consecutive failures to become "+adjective(what, false), field+".failureThreshold"),
			func(n *node) error { return n.probeCount(&p.FailureThreshold) }),
		// A Probe copied from a manifest may carry it; it only concerns
		// liveness probes, so it is accepted and ignored.
		{yaml: []string{field + ".terminationGracePeriodSeconds"}, decode: func(n *node) error { var d time.Duration; return n.seconds(&d) }},
	}
}

// adjective says what a probe's result makes the container.
func adjective(what string, ok bool) string {
	if what == "readiness" {
		if ok {
			return "ready"
		}
		return "unready"
	}
	if ok {
		return "healthy"
	}
	return "unhealthy"
}

// hookSettingsDecl declares a lifecycle hook: --FLAG CMD, --FLAG-http URL,
// --FLAG-sleep DURATION, and FIELD in the file as a core/v1
// LifecycleHandler. Any of the flags set makes the file's handler give way.
func hookSettingsDecl(h *hookSettings, flag, field, hook string) []setting {
	cmd := setting{
		name: flag, arg: "CMD", value: &commandValue{&h.Exec}, yaml: []string{field},
		help:   hook + " hook `CMD` (JSON array: exec form; else /bin/sh -c)",
		decode: func(n *node) error { return n.lifecycleHandler(h) },
		yields: []string{flag + "-http", flag + "-sleep"},
	}
	return []setting{
		cmd,
		str(&h.HTTP, flag+"-http", "URL", "", hook+" hook: GET `URL`"),
		duration(&h.Sleep, flag+"-sleep", 0, hook+" hook: sleep this long (Kubernetes' sleep handler)"),
	}
}

func str(p *string, name, arg, def, help string, yaml ...string) setting {
	*p = def
	return setting{name: name, arg: arg, help: help, value: (*stringValue)(p), def: def, yaml: yaml}
}

func boolean(p *bool, name, help string, yaml ...string) setting {
	*p = false
	return setting{name: name, help: help, value: (*boolValue)(p), yaml: yaml}
}

func integer(p *int, name, arg string, def int, help string, yaml ...string) setting {
	*p = def
	return setting{name: name, arg: arg, help: help, value: (*intValue)(p), def: strconv.Itoa(def), yaml: yaml}
}

func duration(p *time.Duration, name string, def time.Duration, help string, yaml ...string) setting {
	*p = def
	return setting{name: name, arg: "DURATION", help: help, value: (*durationValue)(p), def: def.String(), yaml: yaml}
}

func list(p *[]string, name, arg, help string, yaml ...string) setting {
	*p = nil
	return setting{name: name, arg: arg, help: help, value: (*listValue)(p), yaml: yaml}
}

// withDefault sets the default --help shows, where the zero value stands for
// a default that depends on other settings.
func withDefault(s setting, def string) setting {
	s.def = def
	return s
}

func withDecode(s setting, decode func(n *node) error) setting {
	s.decode = decode
	return s
}

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string { return strconv.FormatBool(bool(*v)) }

type intValue int

// Set takes decimal digits only, with an optional "-": "0x10", "010" or
// "1_000" are no port and no count anyone types on purpose (base-0
// parsing read --drain-connections 0x10 as port 16, 010 as 8).
func (v *intValue) Set(s string) error {
	s = strings.TrimSpace(s)
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.ContainsFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) {
		return errors.New("want a whole number in decimal digits")
	}
	n, err := strconv.ParseInt(s, 10, strconv.IntSize)
	if err != nil {
		return errors.New("want a whole number in decimal digits")
	}
	*v = intValue(n)
	return nil
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

// durationValue accepts Go durations and bare seconds, like parseDuration.
type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "bad duration "+strconv.Quote(strings.TrimSpace(s))+": "))
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }

// listValue is a repeatable flag: each use adds a value. From the
// environment it takes comma-separated values.
type listValue []string

func (v *listValue) Set(s string) error { *v = append(*v, s); return nil }
func (v *listValue) String() string     { return strings.Join(*v, ",") }

// targetValue is a TARGET, checked as it is given.
type targetValue struct {
	t         *target
	allowExec bool
}

func (v *targetValue) Set(s string) error {
	t, err := probes.ParseTarget(s, v.allowExec)
	if err != nil {
		return err
	}
	*v.t = target{Target: t, set: true}
	return nil
}
func (v *targetValue) String() string { return v.t.Raw }

// commandValue is a hook command in Dockerfile style, checked as it is
// given.
type commandValue struct{ c *command }

func (v *commandValue) Set(s string) error {
	argv, shell, err := supervisor.ParseCommand(s)
	if err != nil {
		return err
	}
	*v.c = command{Raw: s, Argv: argv, Shell: shell}
	return nil
}
func (v *commandValue) String() string { return v.c.Raw }

// execCommand is the exec form of argv, as a Kubernetes exec handler is:
// no shell. Raw is its JSON array, which is how exec forms are shown.
func execCommand(argv []string) command {
	b, _ := json.Marshal(argv)
	return command{Raw: string(b), Argv: argv}
}

func isBool(v value) bool {
	_, ok := v.(*boolValue)
	return ok
}

func isList(v value) bool {
	_, ok := v.(*listValue)
	return ok
}

// envVar is the environment variable of d.
func (d *setting) envVar() string {
	if d.env != "" {
		return d.env
	}
	return envName(d.name)
}

// envName is the environment variable that sets flag name.
func envName(name string) string {
	return "LIFECYCLED_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// unsetOwnEnv removes lifecycled's own variables (LIFECYCLED_*) from its
// environment once they are read, so that no process it starts (the
// child, hooks, exec probes) inherits them: a nested lifecycled, or
// `lifecycled wait` in a hook, would otherwise take the outer one's
// settings (LIFECYCLED_LISTEN: "address already in use"). It runs before
// any goroutine that could start a process.
func unsetOwnEnv() {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "LIFECYCLED_") {
			_ = os.Unsetenv(k)
		}
	}
}

// errHelp is returned for -h, -help and --help.
var errHelp = errors.New("help requested")

func isHelp(err error) bool { return errors.Is(err, errHelp) }

// oneLine keeps an error on the one line usage errors are printed on:
// flag names and values are typed by users and may hold line breaks.
var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

// parseFlags sets the flags in args and returns their names and the
// arguments after them: after "--", or from the first argument that is not
// a flag. -name and --name, with the value after "=" or in the next
// argument, as Go's flag package reads them.
func parseFlags(decls []setting, args []string) (map[string]bool, []string, error) {
	byName := map[string]*setting{}
	for i := range decls {
		if decls[i].name != "" {
			byName[decls[i].name] = &decls[i]
		}
	}
	given := map[string]bool{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return given, args[i+1:], nil
		}
		if len(a) < 2 || a[0] != '-' {
			return given, args[i:], nil
		}
		name := strings.TrimPrefix(a[1:], "-")
		if name == "" || name[0] == '-' || name[0] == '=' {
			return nil, nil, fmt.Errorf("bad flag syntax: %s", oneLine.Replace(a))
		}
		name, val, hasVal := strings.Cut(name, "=")
		d := byName[name]
		if d == nil {
			if name == "h" || name == "help" {
				return nil, nil, errHelp
			}
			return nil, nil, unknownFlag(name, decls)
		}
		switch {
		case hasVal:
		case isBool(d.value):
			val = "true"
		case i+1 < len(args):
			i++
			val = args[i]
		default:
			return nil, nil, fmt.Errorf("--%s needs a value", name)
		}
		if err := d.value.Set(val); err != nil {
			return nil, nil, errors.New(oneLine.Replace(fmt.Sprintf("--%s %q: %v", name, val, err)))
		}
		given[name] = true
	}
	return given, nil, nil
}

// unknownFlag names a flag that does not exist and the closest that does,
// as a typo (--drain-dealy) is the usual cause.
func unknownFlag(name string, decls []setting) error {
	msg := "unknown flag --" + oneLine.Replace(name)
	if best := closest(name, decls, func(d *setting) string { return d.name }); best != nil {
		msg += " (did you mean --" + best.name + "?)"
	}
	return errors.New(msg)
}

// closest is the setting whose key(d) is nearest to name, if one is near
// enough to be what a typo meant; nil otherwise.
func closest(name string, decls []setting, key func(d *setting) string) *setting {
	var best *setting
	bestDist := len(name)/3 + 2
	for i := range decls {
		if decls[i].name == "" {
			continue
		}
		if dist := editDistance(name, key(&decls[i])); dist < bestDist {
			best, bestDist = &decls[i], dist
		}
	}
	return best
}

// notSettings are the LIFECYCLED_ variables that are no setting of
// lifecycled and may be set around it: the project's build argument
// (examples/demo/Dockerfile, integration/kube) and test knobs
// (integration/soak_test.go). Every other LIFECYCLED_ variable must name
// a setting.
var notSettings = []string{"LIFECYCLED_IMAGE", "LIFECYCLED_SOAK", "LIFECYCLED_SOAK_OUT"}

// checkEnv refuses a LIFECYCLED_ variable in environ (KEY=VALUE, as
// os.Environ) that names no setting of decls and is not in notSettings,
// naming the closest one: LIFECYCLED_DRAIN_DEALY=5s must not be dropped
// without a word, as an unknown flag is not. The first in sorted order is
// named, so that the line does not change from run to run.
func checkEnv(decls []setting, environ []string) error {
	known := map[string]bool{}
	for _, n := range notSettings {
		known[n] = true
	}
	for i := range decls {
		if decls[i].name != "" {
			known[decls[i].envVar()] = true
		}
	}
	var unknown []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "LIFECYCLED_") && !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	msg := "unknown environment variable " + oneLine.Replace(unknown[0])
	suffix := func(d *setting) string { return strings.TrimPrefix(d.envVar(), "LIFECYCLED_") }
	if best := closest(strings.TrimPrefix(unknown[0], "LIFECYCLED_"), decls, suffix); best != nil {
		msg += " (did you mean " + best.envVar() + "?)"
	}
	if len(unknown) > 1 {
		msg += fmt.Sprintf(" and %d more", len(unknown)-1)
	}
	return errors.New(msg)
}

// lookupEnv is getenv over environ (KEY=VALUE, as os.Environ); the first
// of a repeated key wins, as in os.Getenv.
func lookupEnv(environ []string) func(string) string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 {
		return len(a) // a flag name is short; this keeps a long typo cheap
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// applyEnv sets every setting not given as a flag from its LIFECYCLED_
// variable, and adds it to given. Repeatable settings take
// comma-separated values there.
func applyEnv(decls []setting, getenv func(string) string, given map[string]bool) error {
	for i := range decls {
		d := &decls[i]
		if d.name == "" || given[d.name] {
			continue
		}
		v := getenv(d.envVar())
		if v == "" {
			continue
		}
		vals := []string{v}
		if isList(d.value) {
			vals = strings.Split(v, ",")
		}
		for _, one := range vals {
			if err := d.value.Set(strings.TrimSpace(one)); err != nil {
				return errors.New(oneLine.Replace(fmt.Sprintf("%s=%q: %v", d.envVar(), v, err)))
			}
		}
		given[d.name] = true
	}
	return nil
}

// parseSettings reads the flags of args and then the environment, and
// returns the settings and the names of those given either way, which the
// config file must not override.
func parseSettings(args []string, getenv func(string) string) (*settings, map[string]bool, error) {
	s := &settings{}
	decls := s.declare()
	given, rest, err := parseFlags(decls, args)
	if err != nil {
		return s, nil, err
	}
	if err := applyEnv(decls, getenv, given); err != nil {
		return s, nil, err
	}
	s.Command = rest
	return s, given, nil
}

// loadSettings is parseSettings, then the config file if one is given:
// flag > env > file > default.
func loadSettings(args []string, getenv func(string) string, readFile func(string) ([]byte, error)) (*settings, error) {
	s, given, err := parseSettings(args, getenv)
	if err != nil || s.Config == "" {
		return s, err
	}
	data, err := readFile(s.Config)
	if err != nil {
		return s, fmt.Errorf("--config: %w", err)
	}
	if err := applyFile(s, data, given); err != nil {
		return s, fmt.Errorf("--config %s: %w", s.Config, err)
	}
	return s, nil
}

// printRunUsage writes --help: the commands, then every flag with its
// environment variable.
func printRunUsage(w io.Writer) {
	fmt.Fprint(w, `lifecycled makes containers start and stop gracefully.

Usage:
  lifecycled [FLAGS] -- COMMAND [ARG...]   supervise COMMAND (also: lifecycled run ...)
  lifecycled wait [FLAGS] TARGET...        block until every TARGET is up (exit 0, 124 on timeout)
  lifecycled probe [FLAGS] TARGET          check TARGET once (exit 0 up, 1 down)
  lifecycled sleep DURATION                sleep, then exit 0 (a preStop hook without /bin/sleep)
  lifecycled explain [FLAGS] [-- COMMAND]  print the startup and shutdown timeline and budget check
  lifecycled explain -f FILE [--image IMG] check the lifecycled containers of a Kubernetes manifest
  lifecycled version                       print version, commit, Go version

TARGET: tcp://HOST:PORT  http(s)://HOST[:PORT]/PATH  unix:///PATH  file:///PATH
        dns://NAME  grpc://HOST:PORT[/SERVICE]  exec:COMMAND (--ready only)

Exit codes: the child's code; 128+N if killed by signal N; 2 usage error;
124 dependency timeout; 125 postStart failed; 126 not executable; 127 not found.

Flags (each also as environment variable LIFECYCLED_<FLAG>, e.g. LIFECYCLED_DRAIN_DELAY=5s;
repeatable flags take comma-separated values there). Precedence: flag > env > --config > default.
`)
	printFlags(w, (&settings{}).declare())
}

// printFlags lists every flag as --name ARG, its meaning, default, config
// file key and environment variable.
func printFlags(w io.Writer, decls []setting) {
	for i := range decls {
		d := &decls[i]
		if d.name == "" {
			continue
		}
		def := ""
		if d.def != "" && d.def != "0" && d.def != "0s" {
			def = " (default " + d.def + ")"
		}
		key := ""
		if len(d.yaml) > 0 {
			key = ", " + d.yaml[0]
		}
		arg := ""
		if d.arg != "" {
			arg = " " + d.arg
		}
		fmt.Fprintf(w, "  --%s%s\n        %s%s [%s%s]\n", d.name, arg, strings.ReplaceAll(d.help, "`", ""), def, d.envVar(), key)
	}
}
