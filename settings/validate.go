package settings

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/hooks"
	"github.com/lifecycled/lifecycled/internal/httpserve"
	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/lifecycle"
	"github.com/lifecycled/lifecycled/probes"
	"github.com/lifecycled/lifecycled/supervisor"
)

// Run is what a run needs, validated and typed: the lifecycle's own Config
// and the few settings the process itself acts on. Every bad input has
// already been turned into a usage error.
type Run struct {
	// Config is the lifecycle's; its UserAgent, Version and Revision are
	// the binary's, set by the caller.
	Config lifecycle.Config

	LogFormat, LogLevel string
	Listen, AdminListen string
	// TerminationGrace is --termination-grace-period, the time the stop
	// sequence is checked against (0: not checked).
	TerminationGrace time.Duration
	// StopSignalFrom says which setting chose Config.Stop.StopSignal, for
	// explain.
	StopSignalFrom string

	// Settings are the settings as given, for the start-up log line.
	Settings *Settings
}

// The bounds of --termination-log-max: the kubelet reads at most the last
// 4096 bytes of the file, and a message must hold its reason.
const (
	minTerminationLog = 64
	maxTerminationLog = lifecycle.MaxTerminationMessage
)

// Validate checks the settings and returns the Run it makes. Every error is one line
// naming the flag and the bad value; the caller turns it into exit code 2.
func (s *Settings) Validate() (*Run, error) {
	if len(s.Command) == 0 {
		return nil, errors.New("no COMMAND given: lifecycled [FLAGS] -- COMMAND [ARG...]")
	}
	r := &Run{
		LogFormat:        s.LogFormat,
		LogLevel:         s.LogLevel,
		Listen:           s.Listen,
		AdminListen:      s.AdminListen,
		TerminationGrace: s.TerminationGracePeriod,
		Settings:         s,
	}
	c := &r.Config
	*c = lifecycle.Config{
		Command:            s.Command,
		SingleChild:        s.SingleChild,
		HookLogDir:         s.HookLogDir,
		TerminationLog:     s.TerminationLog,
		TerminationLogTail: s.TerminationLogTail,
		TerminationLogMax:  s.TerminationLogMax,
		TombstoneDir:       s.TombstoneDir,
		ExitWith:           s.ExitWith,
		OnExitPost:         s.OnExitPost,
		Events:             s.Events,
	}
	var err error
	if c.SignalMap, err = supervisor.ParseSignalMap(s.SignalMap); err != nil {
		return nil, fmt.Errorf("--signal-map: %w", err)
	}
	if c.ExitCodeMap, err = supervisor.ParseExitCodeMap(s.ExitCodeMap); err != nil {
		return nil, fmt.Errorf("--exit-code-map: %w", err)
	}
	stop, from, err := stopSignal(s.StopSignal, c.SignalMap)
	if err != nil {
		return nil, err
	}
	r.StopSignalFrom = from
	if s.Command[0] == "" {
		return nil, errors.New(`empty COMMAND (""): lifecycled [FLAGS] -- COMMAND [ARG...]`)
	}
	if c.Name, err = commandName(s.Name, s.Command[0]); err != nil {
		return nil, err
	}
	for _, n := range s.ExitWith {
		if err := checkName("--exit-with", n); err != nil {
			return nil, err
		}
	}
	if len(s.ExitWith) > 0 && s.TombstoneDir == "" {
		return nil, errors.New("--exit-with needs --tombstone-dir: the tombstones to watch live there")
	}

	for _, w := range s.Wait {
		t, err := probes.ParseTarget(w, false)
		if err != nil {
			return nil, fmt.Errorf("--wait: %w", err)
		}
		c.Waits = append(c.Waits, t)
	}
	c.Wait = probes.WaitConfig{MaxInterval: s.WaitInterval, Timeout: s.WaitTimeout, ProgressEvery: 5 * time.Second}
	if s.WaitInterval <= 0 {
		return nil, fmt.Errorf("--wait-interval %s: must be more than 0", s.WaitInterval)
	}

	if c.Ready, err = s.Ready.spec("--ready"); err != nil {
		return nil, err
	}

	if m := s.TerminationLogMax; m < minTerminationLog || m > maxTerminationLog {
		return nil, fmt.Errorf("--termination-log-max %d: want %d to %d (the kubelet reads at most the last %d bytes)", m, minTerminationLog, maxTerminationLog, maxTerminationLog)
	}
	if s.TerminationLogTail && s.TerminationLog == "" {
		return nil, errors.New("--termination-log-tail needs --termination-log: the tail goes into that file")
	}
	if c.Live, err = s.Live.spec("--live"); err != nil {
		return nil, err
	}
	if c.Live != nil {
		if c.Live.SuccessThreshold != 1 {
			return nil, fmt.Errorf("--live-success-threshold %d: must be 1 (Kubernetes requires it of liveness probes)", c.Live.SuccessThreshold)
		}
		c.Live.Liveness = true
	}

	if s.HookTimeout <= 0 {
		return nil, fmt.Errorf("--hook-timeout %s: must be more than 0", s.HookTimeout)
	}
	if c.PostStart, err = newHook(hooks.PostStart, "--post-start", s.PostStart, s.HookTimeout); err != nil {
		return nil, err
	}
	preStop, err := newHook(hooks.PreStop, "--pre-stop", s.PreStop, s.HookTimeout)
	if err != nil {
		return nil, err
	}
	if s.DrainConnections < 0 || s.DrainConnections > 65535 {
		return nil, fmt.Errorf("--drain-connections %d: not a port number", s.DrainConnections)
	}
	quietPorts, err := adaptiveDrain(s, c.Ready, c.Live)
	if err != nil {
		return nil, err
	}
	var keepReady bool
	switch s.DrainReadiness {
	case "fail":
	case "keep":
		keepReady = true
	default:
		return nil, fmt.Errorf("--drain-readiness %q: want fail or keep", s.DrainReadiness)
	}
	c.Stop = drain.Config{
		KeepReady:    keepReady,
		DrainQuiet:   s.DrainQuiet,
		DrainMin:     s.DrainMin,
		QuietPorts:   quietPorts,
		DrainDelay:   s.DrainDelay,
		DrainPort:    s.DrainConnections,
		DrainTimeout: s.DrainTimeout,
		PreStop:      preStop,
		StopSignal:   stop,
		GracePeriod:  s.GracePeriod,
		ProcRoot:     "/proc",

		TerminationGracePeriod: s.TerminationGracePeriod,
	}
	if r.Listen != "" {
		if err := httpserve.CheckAddr(r.Listen); err != nil {
			return nil, fmt.Errorf("--listen: %w", err)
		}
	}
	if r.AdminListen != "" {
		if err := httpserve.CheckLoopback(r.AdminListen); err != nil {
			return nil, fmt.Errorf("--admin-listen: %w", err)
		}
	}
	for _, u := range s.OnExitPost {
		if !isHTTPURL(u) {
			return nil, fmt.Errorf("--on-exit-post %q: want an http:// or https:// URL", redact.URL(u))
		}
	}
	return r, nil
}

// stopSignal decides the signal the stop sequence sends. SIGTERM and
// SIGINT are never forwarded: they start the stop sequence, which sends one
// signal. So a map of TERM or INT says what that signal is (nginx's
// TERM:QUIT), as --stop-signal does; if both are given they must agree,
// since either way one of them would be ignored.
func stopSignal(flag string, m supervisor.SignalMap) (syscall.Signal, string, error) {
	short := func(sig syscall.Signal) string { return strings.TrimPrefix(supervisor.SignalName(sig), "SIG") }
	for from, to := range m {
		if !forwarded(from) {
			return 0, "", fmt.Errorf("--signal-map %s:%s: SIG%s is never forwarded (%s)", short(from), short(to), short(from), notForwarded(from))
		}
	}
	var sig syscall.Signal
	from := "default"
	if flag != "" {
		s, err := supervisor.ParseSignal(flag)
		if err != nil {
			return 0, "", fmt.Errorf("--stop-signal: %w", err)
		}
		sig, from = s, "--stop-signal "+short(s)
	}
	for _, by := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		to, ok := m[by]
		if !ok {
			continue
		}
		entry := "--signal-map " + short(by) + ":" + short(to)
		if sig != 0 && to != sig {
			return 0, "", fmt.Errorf("%s and %s disagree: the stop sequence sends one signal, give it once", entry, from)
		}
		sig, from = to, entry
	}
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if why := cannotStop(sig); why != "" {
		return 0, "", fmt.Errorf("%s: %s cannot be the stop signal: %s", from, supervisor.SignalName(sig), why)
	}
	return sig, from, nil
}

// forwarded reports whether lifecycled receives sig and passes it on (or,
// for TERM and INT, acts on it), so that a map from it can take effect.
func forwarded(sig syscall.Signal) bool {
	return slices.Contains(supervisor.ForwardedSignals(), sig)
}

func notForwarded(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL, syscall.SIGSTOP:
		return "no process can catch it"
	case syscall.SIGCHLD:
		return "it tells lifecycled a child exited"
	}
	return "the Go runtime or a crash owns it; see the README's PID 1 duties"
}

// cannotStop says why sig would never end a process that is asked to stop,
// or "". SIGKILL is allowed: it ends the child at once, as a grace period of
// 0 does. Signals ignored by default are allowed where apps use them to
// stop (httpd's WINCH), but not those that mean something else to every
// process: job control and child status.
func cannotStop(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGSTOP, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU:
		return "it pauses a process (job control), it does not end it"
	case syscall.SIGCONT:
		return "it resumes a paused process, it does not end it"
	case syscall.SIGCHLD, syscall.SIGURG:
		return "processes ignore it by default; it reports an event, it does not ask to stop"
	}
	return ""
}

// spec is the probe to run, nil if no target was given.
func (p Probe) spec(flag string) (*probes.ProbeSpec, error) {
	if !p.Target.set {
		return nil, nil
	}
	if p.Period <= 0 || p.Timeout <= 0 {
		return nil, fmt.Errorf("%s-period and %s-timeout must be more than 0", flag, flag)
	}
	if p.SuccessThreshold < 1 || p.FailureThreshold < 1 {
		return nil, fmt.Errorf("%s-success-threshold and %s-failure-threshold must be at least 1", flag, flag)
	}
	return &probes.ProbeSpec{
		Target: p.Target.Target, InitialDelay: p.InitialDelay, Period: p.Period, Timeout: p.Timeout,
		SuccessThreshold: p.SuccessThreshold, FailureThreshold: p.FailureThreshold,
	}, nil
}

func isHTTPURL(u string) bool {
	_, err := probes.ParseTarget(u, false)
	return err == nil && (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://"))
}

// adaptiveDrain checks --drain-quiet and --drain-min and returns the ports
// the adaptive drain watches: --drain-connections PORT, which names the
// app's serving port, and the ports of the --ready and --live targets,
// which check the app itself (lifecycled's own probes are not counted as
// traffic, see drain.Dials). Without --drain-quiet the same ports, if any,
// are those the drain report watches.
func adaptiveDrain(o *Settings, ready, live *probes.ProbeSpec) ([]int, error) {
	if o.DrainQuiet <= 0 {
		if o.DrainMin > 0 {
			return nil, errors.New("--drain-min needs --drain-quiet (the adaptive drain)")
		}
		if len(o.DrainWatch) > 0 {
			return nil, errors.New("--drain-watch needs --drain-quiet (the adaptive drain)")
		}
	} else if o.DrainDelay <= 0 {
		return nil, fmt.Errorf("--drain-quiet %s needs --drain-delay, the longest the adaptive drain waits", o.DrainQuiet)
	}
	if o.DrainQuiet > o.DrainDelay {
		return nil, fmt.Errorf("--drain-quiet %s is longer than --drain-delay %s, its ceiling: the drain could never end early", o.DrainQuiet, o.DrainDelay)
	}
	if o.DrainMin > o.DrainDelay {
		return nil, fmt.Errorf("--drain-min %s is longer than --drain-delay %s", o.DrainMin, o.DrainDelay)
	}
	// Every port the app serves that lifecycled knows of: traffic to any
	// of them keeps the drain going.
	var ports []int
	add := func(p int) {
		if p > 0 && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	add(o.DrainConnections)
	for _, w := range o.DrainWatch {
		var p intValue // decimal digits only, as every port setting
		if err := p.Set(w); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("--drain-watch %q: not a port number (1-65535, decimal)", w)
		}
		add(int(p))
	}
	for _, spec := range []*probes.ProbeSpec{ready, live} {
		if spec == nil {
			continue
		}
		port := spec.Target.Port
		switch {
		case port == "" && spec.Target.Kind == probes.KindHTTP:
			port = "80"
		case port == "" && spec.Target.Kind == probes.KindHTTPS:
			port = "443"
		}
		if p, err := strconv.Atoi(port); err == nil {
			add(p)
		}
	}
	if len(ports) == 0 && o.DrainQuiet > 0 {
		return nil, errors.New("--drain-quiet needs the app's port: set --drain-watch PORT, --drain-connections PORT or a tcp, http or grpc --ready or --live target")
	}
	return ports, nil
}

// newHook builds a hook from its handlers; at most one may be set.
func newHook(name, flagName string, h Hook, timeout time.Duration) (*hooks.Hook, error) {
	n := 0
	for _, set := range []bool{h.Exec.Argv != nil, h.HTTP != "", h.Sleep > 0} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, fmt.Errorf("%s, %s-http and %s-sleep: give one handler, not several", flagName, flagName, flagName)
	case h.Sleep > 0:
		return &hooks.Hook{Name: name, Sleep: h.Sleep, Timeout: timeout}, nil
	case h.Exec.Argv != nil:
		return &hooks.Hook{Name: name, Exec: h.Exec.Argv, Shell: h.Exec.Shell, Timeout: timeout}, nil
	case h.HTTP != "":
		if !isHTTPURL(h.HTTP) {
			return nil, fmt.Errorf("%s-http %q: want an http:// or https:// URL", flagName, redact.URL(h.HTTP))
		}
		return &hooks.Hook{Name: name, HTTPURL: h.HTTP, Timeout: timeout}, nil
	}
	return nil, nil
}

// Budget is the stop sequence's time budget for --termination-grace-period.
func (r *Run) Budget() drain.Budget {
	st := r.Config.Stop
	b := drain.Budget{DrainDelay: st.DrainDelay, DrainPort: st.DrainPort, GracePeriod: st.GracePeriod, TerminationGracePeriod: r.TerminationGrace}
	if st.DrainPort != 0 {
		b.DrainTimeout = st.DrainTimeout
	}
	if st.PreStop != nil {
		b.PreStopTimeout = st.PreStop.MaxDuration()
	}
	return b
}

// commandName is --name, or else COMMAND's base name. A COMMAND that ends
// in a directory ("/", "..") gets "lifecycled": it cannot be executed, and
// its start fails with 126 naming it, as the contract has it, rather than
// with an error about a name the user never gave.
func commandName(name, command string) (string, error) {
	if name != "" {
		return name, checkName("--name", name)
	}
	name = filepath.Base(command)
	if name == "/" || name == "." || name == ".." {
		return "lifecycled", nil
	}
	if err := checkName("", name); err != nil {
		return "", fmt.Errorf("COMMAND %q: its base name cannot name the tombstone and hook log; give --name", redact.URL(command))
	}
	return name, nil
}

// maxName is the longest file name Linux takes, less the longest suffix
// lifecycled adds (".hooks.log.1").
const maxName = 255 - len(".hooks.log.1")

// checkName accepts a name that is one plain file name on every file system
// and one line in every log: no path separator, no control character.
func checkName(flagName, name string) error {
	bad := ""
	switch {
	case name == "" || name == "." || name == "..":
		bad = "must be a plain file name"
	case strings.ContainsRune(name, '/'):
		bad = "must be a plain file name, without '/'"
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		bad = "must not hold control characters (newline, tab, ...)"
	case len(name) > maxName:
		bad = fmt.Sprintf("longer than %d bytes", maxName)
	}
	if bad == "" {
		return nil
	}
	return fmt.Errorf("%s %q: %s", flagName, name, bad)
}
