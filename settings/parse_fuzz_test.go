package settings

import (
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifecycled/lifecycled/hooks"
	"github.com/lifecycled/lifecycled/internal/httpserve"
)

// checkOneLine fails the test unless err is a single line, as every usage error
// is printed (contract section 2: one clear line on stderr).
func checkOneLine(t *testing.T, what string, err error) {
	t.Helper()
	if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("%s: error is not one line: %q", what, msg)
	}
}

// FuzzParseDuration: every duration flag, environment variable and YAML
// duration goes through parseDuration. What parses is not negative and
// prints (as Go prints durations) to something that parses back to itself;
// Go durations mean what time.ParseDuration says; errors are one line
// naming the input.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{
		"500ms", "10s", "1m30s", "5", "0", "0.5", " 5s ", "-1s", "-1", "1e9", "999999999", "NaN", "Inf",
		"+5", "0x1p4", "1_000", "2562047h47m16.854775807s", "2562048h", "1e-10", ".5", "5.", "1µs", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d, err := ParseDuration(in)
		if err != nil {
			checkOneLine(t, strconv.Quote(in), err)
			if !strings.Contains(err.Error(), strconv.Quote(strings.TrimSpace(in))) {
				t.Fatalf("error for %q does not name it: %v", in, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", in, d)
		}
		if want, err := time.ParseDuration(strings.TrimSpace(in)); err == nil && want != d {
			t.Fatalf("ParseDuration(%q) = %v, time.ParseDuration says %v", in, d, want)
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v, whose String parses to %v, %v", in, d, back, err)
		}
		// A duration flag takes the same text and means the same.
		var got time.Duration
		if err := (*durationValue)(&got).Set(in); err != nil || got != d {
			t.Fatalf("--flag=%q: %v, %v; parseDuration says %v", in, got, err, d)
		}
	})
}

// yamlLine is how a YAML decoding error names where the problem is.
var yamlLine = regexp.MustCompile(`\bline \d+\b`)

// FuzzConfigFile: any --config file is decoded, applied under flags and
// environment, and validated as lifecycled does it, without a panic. A file
// that cannot be decoded is a one-line error naming the line; errors of
// the later steps are one line too. A decoded file yields no negative
// duration, and never overrides a setting given by flag or environment.
func FuzzConfigFile(f *testing.F) {
	for _, s := range configSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return // a config file is small; big inputs only slow the fuzzer
		}
		// Flag > environment > file: with every flag given, the file
		// changes nothing.
		all := defaultSettings()
		all.Command = []string{"app"}
		given := map[string]bool{}
		for _, d := range (&Settings{}).declare() {
			given[d.name] = d.name != ""
		}
		err := applyFile(all, data, given)
		if err != nil && strings.Contains(err.Error(), "already defined") {
			t.Fatalf("the YAML library's duplicate check, not lifecycled's: %v", err)
		}
		if err != nil {
			checkOneLine(t, "file", err)
			if !yamlLine.MatchString(err.Error()) {
				t.Fatalf("config file error names no line: %v", err)
			}
			return
		}
		want := defaultSettings()
		want.Command = []string{"app"}
		if !reflect.DeepEqual(all, want) {
			t.Fatalf("the file overrode flags:\n got %+v\nwant %+v", all, want)
		}

		o := defaultSettings()
		o.Command = []string{"app"}
		if err := applyFile(o, data, map[string]bool{}); err != nil {
			checkOneLine(t, "file", err)
			if !yamlLine.MatchString(err.Error()) {
				t.Fatalf("config file error names no line: %v", err)
			}
			return
		}
		checkValidated(t, o)
	})
}

// FuzzRunOptions: the full flag and environment parsing of `lifecycled run`
// (arguments separated by NUL, environment as KEY=VALUE lines). Whatever
// parses survives being written back as explicit flags; a flag given on
// the command line wins over its environment variable entirely; errors,
// and the validation's, are one line.
func FuzzRunOptions(f *testing.F) {
	for _, s := range []struct{ args, env string }{
		{"--grace-period\x005s\x00--\x00app", ""},
		{"--\x00app\x00--flag", "LIFECYCLED_GRACE_PERIOD=7s\nLIFECYCLED_WAIT=tcp://a:1, tcp://b:2"},
		{"--wait=tcp://a:1\x00--wait\x00tcp://b:2\x00app", "LIFECYCLED_WAIT=tcp://c:3"},
		{"--signal-map=WINCH:USR1\x00--exit-code-map\x00143:0\x00--\x00/bin/app", "LIFECYCLED_SINGLE_CHILD=true"},
		{"--ready\x00exec:[\"/bin/true\"]\x00--ready-period=100ms\x00--\x00app", "LIFECYCLED_READY_FAILURE_THRESHOLD=1"},
		{"--admin-listen=0.0.0.0:1\x00app", ""},
		{"--listen\x00:9090\x00--post-start\x00[\"/bin/echo\",\"hi\"]\x00app", "LIFECYCLED_PRE_STOP=echo bye"},
		{"--bogus\x00app", ""},
		{"--grace-period=-1s\x00app", ""},
		{"app", "LIFECYCLED_GRACE_PERIOD=x"},
		{"--drain-connections=70000\x00app", ""},
		{"--name=a/b\x00app", ""},
		{"-h", ""},
		{"--listen\x00a\nb\x00app", ""},
		{"--exit-with=web\x00app", "LIFECYCLED_TOMBSTONE_DIR=/run/t"},
		{"--on-exit-post=ftp://x\x00app", ""},
	} {
		f.Add(s.args, s.env)
	}
	f.Fuzz(func(t *testing.T, rawArgs, rawEnv string) {
		args := strings.Split(rawArgs, "\x00")
		env := map[string]string{}
		for _, l := range strings.Split(rawEnv, "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				env[k] = v
			}
		}
		getenv := func(k string) string { return env[k] }

		o, set, err := parse(args, getenv)
		if errors.Is(err, ErrHelp) {
			return
		}
		if err != nil {
			checkOneLine(t, "parse", err)
			return
		}

		// Flag beats environment: the environment variables of the flags
		// given on the command line change nothing.
		onCommandLine := map[string]bool{}
		if _, cl, err := parse(args, func(string) string { return "" }); err == nil {
			onCommandLine = cl
		}
		envLess := func(k string) string {
			for name := range onCommandLine {
				if envName(name) == k {
					return ""
				}
			}
			return env[k]
		}
		o2, _, err := parse(args, envLess)
		if err != nil || !reflect.DeepEqual(normalized(o), normalized(o2)) {
			t.Fatalf("environment of flags given on the command line mattered:\n%+v\n%+v (%v)", o, o2, err)
		}

		// What parsed, written back as explicit flags, parses the same.
		again, _, err := parse(asArgs(o, set), func(string) string { return "" })
		if err != nil || !reflect.DeepEqual(normalized(o), normalized(again)) {
			t.Fatalf("options do not survive a round trip through flags:\n got %+v\nthen %+v (%v)\nargs %q", o, again, err, asArgs(o, set))
		}

		checkValidated(t, o)
	})
}

// checkValidated checks o's durations and then what Validate makes of
// it: a Run, or an error of one line.
func checkValidated(t *testing.T, o *Settings) {
	t.Helper()
	checkDurations(t, o)
	cfg, err := o.Validate()
	if err != nil {
		checkOneLine(t, "validate", err)
		return
	}
	checkRunConfig(t, cfg)
}

// asArgs writes o back as command-line flags: those in set, then -- and
// the command.
func asArgs(o *Settings, set map[string]bool) []string {
	var args []string
	c := *o
	decls := c.declare()
	c = *o
	for _, d := range decls {
		if !set[d.name] {
			continue
		}
		if l, ok := d.value.(*listValue); ok {
			for _, v := range *l {
				args = append(args, "--"+d.name+"="+v)
			}
			continue
		}
		args = append(args, "--"+d.name+"="+d.value.String())
	}
	return append(append(args, "--"), o.Command...)
}

// normalized makes empty lists nil, so that comparisons see values only.
func normalized(o *Settings) Settings {
	n := *o
	for _, l := range []*[]string{&n.SignalMap, &n.ExitCodeMap, &n.Wait, &n.ExitWith, &n.OnExitPost} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if len(n.Command) == 0 {
		n.Command = nil
	}
	return n
}

// defaultSettings are the settings with nothing given.
func defaultSettings() *Settings {
	return Defaults()
}

// checkDurations: no input may make a duration negative (an overflow
// would).
func checkDurations(t *testing.T, o *Settings) {
	t.Helper()
	for name, d := range map[string]time.Duration{
		"grace-period": o.GracePeriod, "wait-interval": o.WaitInterval, "wait-timeout": o.WaitTimeout,
		"ready-period": o.Ready.Period, "ready-timeout": o.Ready.Timeout, "ready-initial-delay": o.Ready.InitialDelay,
		"post-start-sleep": o.PostStart.Sleep, "pre-stop-sleep": o.PreStop.Sleep, "hook-timeout": o.HookTimeout,
		"drain-delay": o.DrainDelay, "drain-timeout": o.DrainTimeout, "termination-grace-period": o.TerminationGracePeriod,
	} {
		if d < 0 {
			t.Fatalf("--%s is %v: negative", name, d)
		}
	}
}

// checkRunConfig: a configuration that validates is one lifecycled can run.
func checkRunConfig(t *testing.T, c *Run) {
	t.Helper()
	if len(c.Config.Command) == 0 || c.Config.Stop.StopSignal < 1 || c.Config.Stop.StopSignal > 64 {
		t.Fatalf("validated config cannot run: command %q, stop signal %d", c.Config.Command, c.Config.Stop.StopSignal)
	}
	if checkName("name", c.Config.Name) != nil {
		t.Fatalf("validated config has name %q", c.Config.Name)
	}
	if c.Config.Ready != nil && (c.Config.Ready.Period <= 0 || c.Config.Ready.Timeout <= 0 || c.Config.Ready.SuccessThreshold < 1 || c.Config.Ready.FailureThreshold < 1) {
		t.Fatalf("validated readiness probe %+v", *c.Config.Ready)
	}
	if c.AdminListen != "" && httpserve.CheckLoopback(c.AdminListen) != nil {
		t.Fatalf("validated admin address %q is not loopback", c.AdminListen)
	}
	for _, h := range []*hooks.Hook{c.Config.PostStart, c.Config.Stop.PreStop} {
		if h != nil && (h.Timeout <= 0 || h.Sleep < 0) {
			t.Fatalf("validated hook %+v", *h)
		}
	}
}

// configSeeds are config files worth starting from: the README's, the
// Kubernetes shapes, and the mistakes users make.
var configSeeds = []string{
	// Duplicate keys (issue 17): two drain: mappings were merged.
	"drain:\n  delay: 5s\ndrain:\n  timeout: 10s\n",
	"name: a\nname: b\n",
	"readinessProbe: {tcpSocket: {port: 1}, tcpSocket: {port: 2}}\n",
	"b: &b {delay: 1s}\ndrain:\n  <<: *b\n  <<: *b\n",
	`name: web
waitFor: [tcp://postgres:5432, http://auth:8080/healthz]
waitTimeout: 2m
readinessProbe:
  httpGet: {path: /healthz, port: 8080}
  periodSeconds: 2
  failureThreshold: 3
lifecycle:
  postStart:
    httpGet: {path: /warm, port: 8080}
  preStop:
    exec: {command: ["/app", "flush"]}
terminationGracePeriodSeconds: 30
drain: {delay: 5s, connections: 8080, timeout: 20s}
stopSignal: TERM
gracePeriod: 15s
listen: ":9090"
adminListen: "127.0.0.1:9091"
hookLogDir: /var/log/lifecycled
terminationMessagePath: /dev/termination-log
tombstoneDir: /run/lifecycled
exitWith: [main]
`,
	"readinessProbe:\n  exec:\n    command: [cat, /tmp/ready]\n  initialDelaySeconds: 5\n",
	"readinessProbe:\n  tcpSocket: {port: 5432, host: db}\n",
	"readinessProbe:\n  grpc: {port: 9090, service: my.Svc}\n",
	"readinessProbe:\n  httpGet: {port: http}\n",
	"readinessProbe:\n  periodSeconds: 0\n",
	"lifecycle:\n  preStop:\n    sleep: {seconds: 5}\n  stopSignal: QUIT\n",
	"lifecycle:\n  postStart:\n    tcpSocket: {port: 1}\n",
	"terminationGracePeriodSeconds: 9223372036854775807\n",
	"lifecycle:\n  preStop:\n    sleep: {seconds: 9223372036854775807}\n",
	"terminationGracePeriodSeconds: -1\n",
	"signalMap: [WINCH:USR1]\nexitCodeMap: ['143:0']\nsingleChild: true\n",
	"unknownField: 1\n",
	"name: a\n---\nname: b\n",
	"name: [\n",
	"waitTimeout: soon\n",
	"\t- bad indent",
	"a: &a [*a]\n",
	"drain: {connections: 99999}\n",
	"",
	"# only a comment\n",
	"\xff\xfe",
	"key: \"\x01\"\n",
}
