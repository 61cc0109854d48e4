// Package settings is every setting of `lifecycled run` (and of wait and
// probe): the one declaration table (flag, LIFECYCLED_* variable, default,
// help, YAML key), flag, environment and --config file parsing in the
// contract's precedence flag > env > file > default, the usage text, the
// decoders of the Kubernetes shapes a file or a manifest holds (core/v1
// Probe and LifecycleHandler), and the validation into what a run needs
// (Validate, Run). Nothing else reads a flag or a LIFECYCLED_ variable.
package settings

import (
	"strconv"
	"time"

	"github.com/lifecycled/lifecycled/hooks"
	"github.com/lifecycled/lifecycled/probes"
)

// Settings is every setting of `lifecycled run` as given, before
// validation (Validate). Each field is declared once, in declare, with
// its flag name (and so its LIFECYCLED_ variable), default, help and place
// in the config file: flags, environment and file all fill it through that
// one declaration, in the contract's precedence flag > env > file > default.
type Settings struct {
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

	Ready Probe
	Live  Probe

	Listen      string
	AdminListen string

	PostStart   Hook
	PreStop     Hook
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
	// DrainWatch are more ports the adaptive drain watches (--drain-watch),
	// besides those of --drain-connections, --ready and --live.
	DrainWatch []string
	DrainMin   time.Duration
	// DrainReadiness is fail (the default: /readyz answers 503 from
	// SIGTERM on) or keep (it stays up while the sequence drains).
	DrainReadiness string
	// Events posts the drain report as a Kubernetes Event (--events).
	Events bool

	Command []string
}

// Probe are a kubelet probe's: its target and parameters
// (--ready and --ready-*, readinessProbe in the file).
type Probe struct {
	Target           Target
	Period           time.Duration
	Timeout          time.Duration
	InitialDelay     time.Duration
	SuccessThreshold int
	FailureThreshold int
}

// Hook are one lifecycle hook's handlers; at most one may be set
// (--post-start, --post-start-http, --post-start-sleep; lifecycle.postStart
// in the file).
type Hook struct {
	Exec  Command
	HTTP  string
	Sleep time.Duration
}

// target is a parsed TARGET; the zero value is "not given".
type Target struct {
	probes.Target
	set bool
}

// command is a hook command: the argv, and the text it was given as.
type Command struct {
	Raw   string
	Argv  []string
	Shell bool
}

// setting declares one setting. Flag, environment and file write through
// value, so they cannot disagree on what a text means; reset puts the
// default there (Defaults), which declaring does not.
type setting struct {
	name  string // flag name, and the environment variable envName(name); "" for a file-only key
	env   string // the environment variable, when it is not envName(name)
	arg   string // the argument's name in --help ("" for a bool)
	help  string
	value value
	def   string // the default, as --help shows it
	reset func() // sets the default; nil: the zero value

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

// declare returns every setting bound to s, without writing to s. The
// order is the order of --help. Adding a setting is adding a field above
// and one entry here.
func (s *Settings) declare() []setting {
	ds := []setting{
		str(&s.Config, "config", "FILE", "", "read settings from this YAML `FILE` (Kubernetes field names)"),
		logFormat(&s.LogFormat, "logFormat"),
		logLevel(&s.LogLevel, "logLevel"),
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
		list(&s.DrainWatch, "drain-watch", "PORT", "adaptive drain: also watch traffic to local `PORT` (repeatable; "+
			"the ports of --drain-connections, --ready and --live are always watched)", "drain.watch"),
		str(&s.DrainReadiness, "drain-readiness", "MODE", "fail",
			"/readyz while draining: fail (503 from SIGTERM on) or keep (stays 200 while the app serves: Kubernetes' serving condition, "+
				"for the last endpoints of a Service or of a node with externalTrafficPolicy: Local; 503 once --ready fails or the stop signal is sent)", "drain.readiness"),
		boolean(&s.Events, "events", "post the drain report as a Kubernetes Event on the pod (needs POD_NAME and POD_NAMESPACE "+
			"from the downward API and RBAC create on events; at most 2s, a failure is logged)", "events"),
	)
	return ds
}

// probeSettingsDecl declares a kubelet probe: --FLAG TARGET and its
// parameters, and FIELD in the file as a core/v1 Probe. Kubernetes' zero
// values mean its defaults, which are lifecycled's defaults too.
func probeSettingsDecl(p *Probe, flag, field, what string) []setting {
	return []setting{
		{
			name: flag, arg: "TARGET", value: &targetValue{&p.Target, true}, yaml: []string{field},
			help:   what + " probe `TARGET` of the child (tcp, http, grpc, exec:...)",
			decode: strictly((*kubeReader).probe, func(k *KubeProbe) { p.Target = Target{Target: k.target(), set: true} }),
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
func hookSettingsDecl(h *Hook, flag, field, hook string) []setting {
	cmd := setting{
		name: flag, arg: "CMD", value: &commandValue{&h.Exec}, yaml: []string{field},
		help:   hook + " hook `CMD` (JSON array: exec form; else /bin/sh -c)",
		decode: strictly((*kubeReader).lifecycleHandler, func(l *LifecycleHandler) { *h = l.hook() }),
		yields: []string{flag + "-http", flag + "-sleep"},
	}
	return []setting{
		cmd,
		str(&h.HTTP, flag+"-http", "URL", "", hook+" hook: GET `URL`"),
		duration(&h.Sleep, flag+"-sleep", 0, hook+" hook: sleep this long (Kubernetes' sleep handler)"),
	}
}

// logFormat and logLevel are declared for run, wait and probe alike.
func logFormat(p *string, yaml ...string) setting {
	return str(p, "log-format", "FORMAT", "json", "log format on stderr: json or console", yaml...)
}

func logLevel(p *string, yaml ...string) setting {
	return str(p, "log-level", "LEVEL", "info", "log level: debug, info, warn, error", yaml...)
}

func str(p *string, name, arg, def, help string, yaml ...string) setting {
	return setting{name: name, arg: arg, help: help, value: (*stringValue)(p), def: def, reset: func() { *p = def }, yaml: yaml}
}

func boolean(p *bool, name, help string, yaml ...string) setting {
	return setting{name: name, help: help, value: (*boolValue)(p), yaml: yaml}
}

func integer(p *int, name, arg string, def int, help string, yaml ...string) setting {
	return setting{name: name, arg: arg, help: help, value: (*intValue)(p), def: strconv.Itoa(def), reset: func() { *p = def }, yaml: yaml}
}

func duration(p *time.Duration, name string, def time.Duration, help string, yaml ...string) setting {
	return setting{name: name, arg: "DURATION", help: help, value: (*durationValue)(p), def: def.String(), reset: func() { *p = def }, yaml: yaml}
}

func list(p *[]string, name, arg, help string, yaml ...string) setting {
	return setting{name: name, arg: arg, help: help, value: (*listValue)(p), yaml: yaml}
}

// Defaults are the settings before any flag, variable or file: the one
// place the defaults are written, from the declarations.
func Defaults() *Settings {
	s := &Settings{}
	setDefaults(s.declare())
	return s
}

func setDefaults(decls []setting) {
	for _, d := range decls {
		if d.reset != nil {
			d.reset()
		}
	}
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
