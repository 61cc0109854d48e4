package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/probes"
	"github.com/lifecycled/lifecycled/supervisor"
)

// runConfig is the validated, typed form of runOptions: everything a run
// needs, with every bad input already turned into a usage error.
type runConfig struct {
	logFormat, logLevel string
	name                string
	command             []string

	singleChild bool
	signalMap   supervisor.SignalMap
	exitCodeMap supervisor.ExitCodeMap
	stopSignal  syscall.Signal
	gracePeriod time.Duration

	waits []probes.Target
	wait  probes.WaitConfig
	ready *probes.ProbeSpec
	live  *probes.ProbeSpec

	listen, adminListen string

	postStart, preStop *drain.Hook
	drain              drain.Config
	terminationGrace   time.Duration

	hookLogDir, terminationLog, tombstoneDir string
	exitWith, onExitPost                     []string
}

// newRunConfig validates o into a runConfig. Every error is one line naming
// the flag and the bad value; main turns it into exit code 2.
func newRunConfig(o runOptions) (*runConfig, error) {
	if len(o.Command) == 0 {
		return nil, errors.New("no COMMAND given: lifecycled [FLAGS] -- COMMAND [ARG...]")
	}
	c := &runConfig{
		logFormat:      o.LogFormat,
		logLevel:       o.LogLevel,
		command:        o.Command,
		singleChild:    o.SingleChild,
		gracePeriod:    o.GracePeriod,
		listen:         o.Listen,
		adminListen:    o.AdminListen,
		hookLogDir:     o.HookLogDir,
		terminationLog: o.TerminationLog,
		tombstoneDir:   o.TombstoneDir,
		exitWith:       o.ExitWith,
		onExitPost:     o.OnExitPost,

		terminationGrace: o.TerminationGracePeriod,
	}
	var err error
	if c.signalMap, err = supervisor.ParseSignalMap(o.SignalMap); err != nil {
		return nil, fmt.Errorf("--signal-map: %w", err)
	}
	if c.exitCodeMap, err = supervisor.ParseExitCodeMap(o.ExitCodeMap); err != nil {
		return nil, fmt.Errorf("--exit-code-map: %w", err)
	}
	if c.stopSignal, err = supervisor.ParseSignal(o.StopSignal); err != nil {
		return nil, fmt.Errorf("--stop-signal: %w", err)
	}
	c.name = o.Name
	if c.name == "" {
		c.name = filepath.Base(o.Command[0])
	}
	if err := checkName("--name", c.name); err != nil {
		return nil, err
	}
	for _, n := range o.ExitWith {
		if err := checkName("--exit-with", n); err != nil {
			return nil, err
		}
	}
	if len(o.ExitWith) > 0 && o.TombstoneDir == "" {
		return nil, errors.New("--exit-with needs --tombstone-dir: the tombstones to watch live there")
	}

	for _, w := range o.Wait {
		t, err := probes.ParseTarget(w, false)
		if err != nil {
			return nil, fmt.Errorf("--wait: %w", err)
		}
		c.waits = append(c.waits, t)
	}
	c.wait = probes.WaitConfig{MaxInterval: o.WaitInterval, Timeout: o.WaitTimeout, ProgressEvery: 5 * time.Second}
	if o.WaitInterval <= 0 {
		return nil, fmt.Errorf("--wait-interval %s: must be more than 0", o.WaitInterval)
	}

	if o.Ready != "" {
		t, err := probes.ParseTarget(o.Ready, true)
		if err != nil {
			return nil, fmt.Errorf("--ready: %w", err)
		}
		if o.ReadyPeriod <= 0 || o.ReadyTimeout <= 0 {
			return nil, errors.New("--ready-period and --ready-timeout must be more than 0")
		}
		if o.ReadySuccessThreshold < 1 || o.ReadyFailureThreshold < 1 {
			return nil, errors.New("--ready-success-threshold and --ready-failure-threshold must be at least 1")
		}
		c.ready = &probes.ProbeSpec{
			Target: t, InitialDelay: o.ReadyInitialDelay, Period: o.ReadyPeriod, Timeout: o.ReadyTimeout,
			SuccessThreshold: o.ReadySuccessThreshold, FailureThreshold: o.ReadyFailureThreshold,
		}
	}

	if o.Live != "" {
		t, err := probes.ParseTarget(o.Live, true)
		if err != nil {
			return nil, fmt.Errorf("--live: %w", err)
		}
		if o.LivePeriod <= 0 || o.LiveTimeout <= 0 {
			return nil, errors.New("--live-period and --live-timeout must be more than 0")
		}
		if o.LiveSuccessThreshold != 1 {
			return nil, fmt.Errorf("--live-success-threshold %d: must be 1 (Kubernetes requires it of liveness probes)", o.LiveSuccessThreshold)
		}
		if o.LiveFailureThreshold < 1 {
			return nil, errors.New("--live-failure-threshold must be at least 1")
		}
		c.live = &probes.ProbeSpec{
			Target: t, InitialDelay: o.LiveInitialDelay, Period: o.LivePeriod, Timeout: o.LiveTimeout,
			SuccessThreshold: 1, FailureThreshold: o.LiveFailureThreshold, Liveness: true,
		}
	}

	if o.HookTimeout <= 0 {
		return nil, fmt.Errorf("--hook-timeout %s: must be more than 0", o.HookTimeout)
	}
	if c.postStart, err = newHook(drain.HookPostStart, "--post-start", o.PostStart, o.PostStartHTTP, o.PostStartSleep, o.HookTimeout); err != nil {
		return nil, err
	}
	if c.preStop, err = newHook(drain.HookPreStop, "--pre-stop", o.PreStop, o.PreStopHTTP, o.PreStopSleep, o.HookTimeout); err != nil {
		return nil, err
	}
	if o.DrainConnections < 0 || o.DrainConnections > 65535 {
		return nil, fmt.Errorf("--drain-connections %d: not a port number", o.DrainConnections)
	}
	c.drain = drain.Config{
		DrainDelay:   o.DrainDelay,
		DrainPort:    o.DrainConnections,
		DrainTimeout: o.DrainTimeout,
		PreStop:      c.preStop,
		StopSignal:   c.stopSignal,
		GracePeriod:  o.GracePeriod,
		ProcRoot:     "/proc",
	}
	if c.listen != "" {
		if _, _, err := splitAddr(c.listen); err != nil {
			return nil, fmt.Errorf("--listen: %w", err)
		}
	}
	if c.adminListen != "" {
		if err := checkLoopback(c.adminListen); err != nil {
			return nil, fmt.Errorf("--admin-listen: %w", err)
		}
	}
	for _, u := range o.OnExitPost {
		if _, err := probes.ParseTarget(u, false); err != nil || !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
			return nil, fmt.Errorf("--on-exit-post %q: want an http:// or https:// URL", u)
		}
	}
	return c, nil
}

// newHook builds a hook from its command, HTTP and sleep flags; at most one
// may be set.
func newHook(name, flagName, cmd, url string, sleep, timeout time.Duration) (*drain.Hook, error) {
	n := 0
	for _, set := range []bool{cmd != "", url != "", sleep > 0} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, fmt.Errorf("%s, %s-http and %s-sleep: give one handler, not several", flagName, flagName, flagName)
	case sleep > 0:
		return &drain.Hook{Name: name, Sleep: sleep, Timeout: timeout}, nil
	case cmd != "":
		argv, shell, err := supervisor.ParseCommand(cmd)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flagName, err)
		}
		return &drain.Hook{Name: name, Exec: argv, Shell: shell, Timeout: timeout}, nil
	case url != "":
		if _, err := probes.ParseTarget(url, false); err != nil || !(strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://")) {
			return nil, fmt.Errorf("%s-http %q: want an http:// or https:// URL", flagName, url)
		}
		return &drain.Hook{Name: name, HTTPURL: url, Timeout: timeout}, nil
	}
	return nil, nil
}

// budget is the stop sequence's time budget for --termination-grace-period.
func (c *runConfig) budget() drain.Budget {
	b := drain.Budget{DrainDelay: c.drain.DrainDelay, GracePeriod: c.gracePeriod, TerminationGracePeriod: c.terminationGrace}
	if c.drain.DrainPort != 0 {
		b.DrainTimeout = c.drain.DrainTimeout
	}
	if c.preStop != nil {
		b.PreStopTimeout = c.preStop.MaxDuration()
	}
	return b
}

func checkName(flagName, name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return fmt.Errorf("%s %q: must be a plain file name", flagName, name)
	}
	return nil
}

func splitAddr(addr string) (string, string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("address %q: %s", addr, addrReason(err))
	}
	return host, port, nil
}

// addrReason is what is wrong with an address, without the address itself:
// net.AddrError repeats it unquoted, so a newline in it would split the one
// line of a usage error.
func addrReason(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

func sprintfLine(format string, args ...any) string {
	s := fmt.Sprintf(format, args...)
	s = strings.ReplaceAll(s, "\n", " ")
	return s + "\n"
}
