package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// fileConfig is the YAML of --config FILE (contract section 7). Where
// Kubernetes has a name for a thing the field has that name and meaning:
// readinessProbe is a core/v1 Probe, lifecycle holds LifecycleHandlers,
// terminationGracePeriodSeconds is the PodSpec's.
type fileConfig struct {
	Name                          string        `yaml:"name"`
	LogFormat                     string        `yaml:"logFormat"`
	LogLevel                      string        `yaml:"logLevel"`
	WaitFor                       []string      `yaml:"waitFor"`
	WaitTimeout                   *fileDuration `yaml:"waitTimeout"`
	WaitInterval                  *fileDuration `yaml:"waitInterval"`
	ReadinessProbe                *k8sProbe     `yaml:"readinessProbe"`
	LivenessProbe                 *k8sProbe     `yaml:"livenessProbe"`
	Lifecycle                     *k8sLifecycle `yaml:"lifecycle"`
	HookTimeout                   *fileDuration `yaml:"hookTimeout"`
	TerminationGracePeriodSeconds *int64        `yaml:"terminationGracePeriodSeconds"`
	Drain                         *fileDrain    `yaml:"drain"`
	StopSignal                    string        `yaml:"stopSignal"`
	GracePeriod                   *fileDuration `yaml:"gracePeriod"`
	SingleChild                   *bool         `yaml:"singleChild"`
	SignalMap                     []string      `yaml:"signalMap"`
	ExitCodeMap                   []string      `yaml:"exitCodeMap"`
	Listen                        string        `yaml:"listen"`
	AdminListen                   string        `yaml:"adminListen"`
	HookLogDir                    string        `yaml:"hookLogDir"`
	TerminationMessagePath        string        `yaml:"terminationMessagePath"`
	TombstoneDir                  string        `yaml:"tombstoneDir"`
	ExitWith                      []string      `yaml:"exitWith"`
	OnExitPost                    []string      `yaml:"onExitPost"`
}

// fileDrain is the stop sequence's settings.
type fileDrain struct {
	Delay       *fileDuration `yaml:"delay"`
	Connections *int          `yaml:"connections"`
	Timeout     *fileDuration `yaml:"timeout"`
}

// k8sProbe mirrors core/v1 Probe.
type k8sProbe struct {
	k8sHandler          `yaml:",inline"`
	GRPC                *k8sGRPC `yaml:"grpc"`
	InitialDelaySeconds *int32   `yaml:"initialDelaySeconds"`
	PeriodSeconds       *int32   `yaml:"periodSeconds"`
	TimeoutSeconds      *int32   `yaml:"timeoutSeconds"`
	SuccessThreshold    *int32   `yaml:"successThreshold"`
	FailureThreshold    *int32   `yaml:"failureThreshold"`
	// Accepted for compatibility with a copied Probe, and ignored: it
	// only concerns liveness probes.
	TerminationGracePeriodSeconds *int64 `yaml:"terminationGracePeriodSeconds"`
}

// k8sHandler mirrors the handler fields shared by core/v1 Probe and
// LifecycleHandler.
type k8sHandler struct {
	Exec      *k8sExec      `yaml:"exec"`
	HTTPGet   *k8sHTTPGet   `yaml:"httpGet"`
	TCPSocket *k8sTCPSocket `yaml:"tcpSocket"`
}

type k8sExec struct {
	Command []string `yaml:"command"`
}

type k8sHTTPGet struct {
	Path        string          `yaml:"path"`
	Port        k8sPort         `yaml:"port"`
	Host        string          `yaml:"host"`
	Scheme      string          `yaml:"scheme"`
	HTTPHeaders []k8sHTTPHeader `yaml:"httpHeaders"`
}

type k8sHTTPHeader struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

type k8sTCPSocket struct {
	Port k8sPort `yaml:"port"`
	Host string  `yaml:"host"`
}

type k8sGRPC struct {
	Port    int32   `yaml:"port"`
	Service *string `yaml:"service"`
}

type k8sSleep struct {
	Seconds int64 `yaml:"seconds"`
}

// k8sLifecycle mirrors core/v1 Lifecycle.
type k8sLifecycle struct {
	PostStart  *k8sLifecycleHandler `yaml:"postStart"`
	PreStop    *k8sLifecycleHandler `yaml:"preStop"`
	StopSignal string               `yaml:"stopSignal"`
}

// k8sLifecycleHandler mirrors core/v1 LifecycleHandler.
type k8sLifecycleHandler struct {
	k8sHandler `yaml:",inline"`
	Sleep      *k8sSleep `yaml:"sleep"`
}

// k8sPort is an IntOrString port. A named port ("http") needs the
// container's port list, which lifecycled does not have, so only numbers
// are accepted.
type k8sPort struct{ n int }

func (p *k8sPort) UnmarshalYAML(v *yaml.Node) error {
	n, err := strconv.Atoi(v.Value)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("line %d: port %q: want a number 1-65535 (named ports cannot be resolved outside the pod spec)", v.Line, v.Value)
	}
	p.n = n
	return nil
}

// maxSeconds is the most whole seconds a time.Duration holds (292 years).
const maxSeconds = int64(math.MaxInt64 / int64(time.Second))

// seconds turns a Kubernetes int64 *Seconds field into a duration. The
// bound matters: 9223372036854775807 seconds would overflow into a
// negative duration.
func seconds(field string, n int64) (time.Duration, error) {
	if n < 0 {
		return 0, fmt.Errorf("%s: must not be negative", field)
	}
	if n > maxSeconds {
		return 0, fmt.Errorf("%s: %d is more than %d", field, n, maxSeconds)
	}
	return time.Duration(n) * time.Second, nil
}

// fileDuration is a duration written as "5s" or, like Kubernetes' *Seconds
// fields, as a bare number of seconds.
type fileDuration struct{ d time.Duration }

func (d *fileDuration) UnmarshalYAML(v *yaml.Node) error {
	parsed, err := parseDuration(v.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", v.Line, err)
	}
	d.d = parsed
	return nil
}

// applyConfigFile fills the options not set by flag or environment from the
// YAML file at path: flag > environment > file > default.
func applyConfigFile(o *runOptions, path string, set map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	fc, err := decodeConfigFile(data)
	if err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	if err := fc.apply(o, set); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	return nil
}

// decodeConfigFile decodes strictly: an unknown field is an error naming
// the field and its line, as a typo in a manifest must not pass silently.
func decodeConfigFile(data []byte) (*fileConfig, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var fc fileConfig
	if err := dec.Decode(&fc); err != nil {
		if errors.Is(err, io.EOF) {
			return &fc, nil // an empty file sets nothing
		}
		return nil, yamlError(err, data)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		line := more.Line
		if len(more.Content) > 0 {
			line = more.Content[0].Line
		}
		return nil, fmt.Errorf("line %d: more than one YAML document", line)
	}
	return &fc, nil
}

// yamlError folds the YAML library's multi-line error into one line and
// drops Go type names, which mean nothing to a user. Every error names a
// line: where the library names none, see errorLine.
func yamlError(err error, data []byte) error {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	s = strings.TrimPrefix(s, "unmarshal errors:")
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if i := strings.Index(l, " not found in type "); i >= 0 {
			l = l[:i] + " is not a known field" // "line 3: field foo is not a known field"
		}
		parts = append(parts, l)
	}
	msg := strings.Join(parts, "; ")
	if !yamlLineRE.MatchString(msg) {
		msg = fmt.Sprintf("line %d: %s", errorLine(msg, data), msg)
	}
	return errors.New(msg)
}

var (
	yamlLineRE   = regexp.MustCompile(`\bline \d+\b`)
	yamlAnchorRE = regexp.MustCompile(`anchor '([^']*)'`)
)

// errorLine finds the line of a YAML error whose message names none. The
// library leaves the line out for a problem on the first line (its marks
// count from 0, and 0 reads as "unknown"), for a character it cannot read
// (it knows only the byte offset), and for an unknown anchor.
func errorLine(msg string, data []byte) int {
	if strings.Contains(msg, "control characters") || strings.Contains(msg, "UTF-") || strings.Contains(msg, "Unicode") {
		if line, ok := badCharLine(data); ok {
			return line
		}
	}
	if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			return 1 + bytes.Count(data[:i], []byte("\n"))
		}
	}
	return 1
}

// badCharLine returns the line of the first character YAML does not allow:
// bytes that are not UTF-8, and control characters other than tab and line
// breaks.
func badCharLine(data []byte) (int, bool) {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		bad := (r == utf8.RuneError && size == 1) ||
			(r < 0x20 && r != '\t' && r != '\n' && r != '\r') ||
			(r >= 0x7f && r < 0xa0 && r != 0x85) ||
			(r >= 0xd800 && r < 0xe000) || r == 0xfffe || r == 0xffff
		if bad {
			return line, true
		}
		if r == '\n' {
			line++
		}
		i += size
	}
	return 0, false
}

// apply copies every field that is set in the file onto o, unless its flag
// was given on the command line or in the environment.
func (fc *fileConfig) apply(o *runOptions, set map[string]bool) error {
	str := func(flag string, dst *string, v string) {
		if v != "" && !set[flag] {
			*dst = v
		}
	}
	dur := func(flag string, dst *time.Duration, v *fileDuration) {
		if v != nil && !set[flag] {
			*dst = v.d
		}
	}
	list := func(flag string, dst *stringList, v []string) {
		if len(v) > 0 && !set[flag] {
			*dst = append(stringList(nil), v...)
		}
	}
	str("name", &o.Name, fc.Name)
	str("log-format", &o.LogFormat, fc.LogFormat)
	str("log-level", &o.LogLevel, fc.LogLevel)
	list("wait", &o.Wait, fc.WaitFor)
	dur("wait-timeout", &o.WaitTimeout, fc.WaitTimeout)
	dur("wait-interval", &o.WaitInterval, fc.WaitInterval)
	dur("hook-timeout", &o.HookTimeout, fc.HookTimeout)
	str("stop-signal", &o.StopSignal, fc.StopSignal)
	dur("grace-period", &o.GracePeriod, fc.GracePeriod)
	if fc.SingleChild != nil && !set["single-child"] {
		o.SingleChild = *fc.SingleChild
	}
	list("signal-map", &o.SignalMap, fc.SignalMap)
	list("exit-code-map", &o.ExitCodeMap, fc.ExitCodeMap)
	str("listen", &o.Listen, fc.Listen)
	str("admin-listen", &o.AdminListen, fc.AdminListen)
	str("hook-log-dir", &o.HookLogDir, fc.HookLogDir)
	str("termination-log", &o.TerminationLog, fc.TerminationMessagePath)
	str("tombstone-dir", &o.TombstoneDir, fc.TombstoneDir)
	list("exit-with", &o.ExitWith, fc.ExitWith)
	list("on-exit-post", &o.OnExitPost, fc.OnExitPost)
	if fc.TerminationGracePeriodSeconds != nil && !set["termination-grace-period"] {
		d, err := seconds("terminationGracePeriodSeconds", *fc.TerminationGracePeriodSeconds)
		if err != nil {
			return err
		}
		o.TerminationGracePeriod = d
	}
	if d := fc.Drain; d != nil {
		dur("drain-delay", &o.DrainDelay, d.Delay)
		dur("drain-timeout", &o.DrainTimeout, d.Timeout)
		if d.Connections != nil && !set["drain-connections"] {
			o.DrainConnections = *d.Connections
		}
	}
	if l := fc.Lifecycle; l != nil {
		str("stop-signal", &o.StopSignal, l.StopSignal)
		if err := l.PostStart.apply("lifecycle.postStart", "post-start", o, set); err != nil {
			return err
		}
		if err := l.PreStop.apply("lifecycle.preStop", "pre-stop", o, set); err != nil {
			return err
		}
	}
	if p := fc.ReadinessProbe; p != nil {
		err := p.apply("readinessProbe", set, probeOptions{"ready", &o.Ready, &o.ReadyInitialDelay, &o.ReadyPeriod,
			&o.ReadyTimeout, &o.ReadySuccessThreshold, &o.ReadyFailureThreshold})
		if err != nil {
			return err
		}
	}
	if p := fc.LivenessProbe; p != nil {
		return p.apply("livenessProbe", set, probeOptions{"live", &o.Live, &o.LiveInitialDelay, &o.LivePeriod,
			&o.LiveTimeout, &o.LiveSuccessThreshold, &o.LiveFailureThreshold})
	}
	return nil
}

// probeOptions are the options a Probe sets: the flags PREFIX,
// PREFIX-initial-delay, PREFIX-period, PREFIX-timeout,
// PREFIX-success-threshold and PREFIX-failure-threshold.
type probeOptions struct {
	prefix                        string
	target                        *string
	initialDelay, period, timeout *time.Duration
	success, failure              *int
}

// apply sets the hook flags (flag, flag-http, flag-sleep) from a
// LifecycleHandler, unless any of them was given.
func (h *k8sLifecycleHandler) apply(field, flag string, o *runOptions, set map[string]bool) error {
	if h == nil || set[flag] || set[flag+"-http"] || set[flag+"-sleep"] {
		return nil
	}
	n := 0
	var cmd, url string
	var sleep time.Duration
	if h.Exec != nil {
		n++
		if len(h.Exec.Command) == 0 {
			return fmt.Errorf("%s.exec.command: empty", field)
		}
		b, _ := json.Marshal(h.Exec.Command) // exec form: no shell, as in Kubernetes
		cmd = string(b)
	}
	if h.HTTPGet != nil {
		n++
		u, err := h.HTTPGet.url(field + ".httpGet")
		if err != nil {
			return err
		}
		url = u
	}
	if h.TCPSocket != nil {
		return fmt.Errorf("%s.tcpSocket: not supported as a lifecycle handler (Kubernetes deprecated it)", field)
	}
	if h.Sleep != nil {
		n++
		d, err := seconds(field+".sleep.seconds", h.Sleep.Seconds)
		if err != nil {
			return err
		}
		sleep = d
	}
	if n != 1 {
		return fmt.Errorf("%s: give exactly one of exec, httpGet, sleep", field)
	}
	switch flag {
	case "post-start":
		o.PostStart, o.PostStartHTTP, o.PostStartSleep = cmd, url, sleep
	case "pre-stop":
		o.PreStop, o.PreStopHTTP, o.PreStopSleep = cmd, url, sleep
	}
	return nil
}

// url renders an HTTPGetAction as the URL lifecycled calls. The host
// defaults to 127.0.0.1: lifecycled runs inside the pod, where the kubelet
// would use the pod's IP.
func (g *k8sHTTPGet) url(field string) (string, error) {
	if len(g.HTTPHeaders) > 0 {
		return "", fmt.Errorf("%s.httpHeaders: not supported", field)
	}
	scheme := strings.ToLower(g.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("%s.scheme %q: want HTTP or HTTPS", field, g.Scheme)
	}
	if g.Port.n == 0 {
		return "", fmt.Errorf("%s.port: required", field)
	}
	host := g.Host
	if host == "" {
		host = "127.0.0.1"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(g.Port.n)) + path, nil
}

// apply sets the --ready or --live flags (dst) from the Probe at field,
// field by field, each unless given by flag or environment. Kubernetes' zero
// values mean its defaults, which are lifecycled's defaults too.
func (p *k8sProbe) apply(field string, set map[string]bool, dst probeOptions) error {
	n := 0
	var target string
	if p.Exec != nil {
		n++
		if len(p.Exec.Command) == 0 {
			return fmt.Errorf("%s.exec.command: empty", field)
		}
		b, _ := json.Marshal(p.Exec.Command)
		target = "exec:" + string(b)
	}
	if p.HTTPGet != nil {
		n++
		u, err := p.HTTPGet.url(field + ".httpGet")
		if err != nil {
			return err
		}
		target = u
	}
	if p.TCPSocket != nil {
		n++
		if p.TCPSocket.Port.n == 0 {
			return fmt.Errorf("%s.tcpSocket.port: required", field)
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = "127.0.0.1"
		}
		target = "tcp://" + net.JoinHostPort(host, strconv.Itoa(p.TCPSocket.Port.n))
	}
	if p.GRPC != nil {
		n++
		if p.GRPC.Port < 1 || p.GRPC.Port > 65535 {
			return fmt.Errorf("%s.grpc.port %d: want 1-65535", field, p.GRPC.Port)
		}
		target = "grpc://127.0.0.1:" + strconv.Itoa(int(p.GRPC.Port))
		if p.GRPC.Service != nil && *p.GRPC.Service != "" {
			target += "/" + *p.GRPC.Service
		}
	}
	if n != 1 {
		return fmt.Errorf("%s: give exactly one of exec, httpGet, tcpSocket, grpc", field)
	}
	if !set[dst.prefix] {
		*dst.target = target
	}
	secs := func(flag, name string, to *time.Duration, v *int32, min int32) error {
		if v == nil || set[dst.prefix+"-"+flag] || *v == 0 {
			return nil
		}
		if *v < min {
			return fmt.Errorf("%s.%s: must be at least %d", field, name, min)
		}
		*to = time.Duration(*v) * time.Second
		return nil
	}
	count := func(flag, name string, to *int, v *int32) error {
		if v == nil || set[dst.prefix+"-"+flag] || *v == 0 {
			return nil
		}
		if *v < 1 {
			return fmt.Errorf("%s.%s: must be at least 1", field, name)
		}
		*to = int(*v)
		return nil
	}
	for _, err := range []error{
		secs("initial-delay", "initialDelaySeconds", dst.initialDelay, p.InitialDelaySeconds, 0),
		secs("period", "periodSeconds", dst.period, p.PeriodSeconds, 1),
		secs("timeout", "timeoutSeconds", dst.timeout, p.TimeoutSeconds, 1),
		count("success-threshold", "successThreshold", dst.success, p.SuccessThreshold),
		count("failure-threshold", "failureThreshold", dst.failure, p.FailureThreshold),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
