package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/hooks"
	"github.com/lifecycled/lifecycled/probes"
	"github.com/lifecycled/lifecycled/redact"
	"github.com/lifecycled/lifecycled/supervisor"
)

// explainMain is `lifecycled explain [FLAGS] [-- COMMAND]`: it prints the
// configuration as it will run and the stop timeline, and checks the
// timeline against --termination-grace-period. Exit 0 when it fits (or
// nothing was given to check against), 1 when it does not, 2 on bad flags.
func explainMain(args []string, stdout, stderr io.Writer) int {
	if isExplainFile(args) {
		return explainFileMain(args, os.Stdin, stdout, stderr)
	}
	s, err := loadSettings(args, os.Getenv, readFileBounded)
	if isHelp(err) {
		printRunUsage(stdout)
		printExplainFileUsage(stdout)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "explain: %v", err)
	}
	if len(s.Command) == 0 {
		s.Command = []string{"COMMAND"} // explain needs no command to run
	}
	cfg, err := newRunConfig(s)
	if err != nil {
		return usageError(stderr, "explain: %v", err)
	}
	w := &explainWriter{w: stdout}
	w.startup(cfg)
	w.shutdown(cfg)
	return w.budget(cfg)
}

type explainWriter struct{ w io.Writer }

// line writes one line with the secrets of the URLs it names masked (the
// commands, targets and hooks explain and explain -f print may hold
// passwords and tokens; URL values are masked where they are known whole,
// and this catches the rest).
func (e *explainWriter) line(format string, a ...any) {
	fmt.Fprintln(e.w, redact.URLs(fmt.Sprintf(format, a...)))
}

func (e *explainWriter) startup(c *runConfig) {
	ver, _ := buildVersion()
	e.line("lifecycled %s: %s (name %q)", ver, commandString(c.command), c.name)
	e.line("")
	e.line("Start-up")
	n := 0
	step := func(format string, a ...any) {
		n++
		e.line("  %d. "+format, append([]any{n}, a...)...)
	}
	if len(c.waits) > 0 {
		limit := "no limit"
		if c.wait.Timeout > 0 {
			limit = c.wait.Timeout.String() + ", then exit 124"
		}
		step("wait for dependencies, all at once, retrying every %s up to %s (%s):", probes.FirstBackoff, c.wait.MaxInterval, limit)
		for _, t := range c.waits {
			e.line("       %s", t)
		}
	}
	mode := "its process group"
	if c.singleChild {
		mode = "the child alone"
	}
	step("start the command in its own process group; signals go to %s", mode)
	e.line("     SIGTERM and SIGINT are not forwarded: they start the stop sequence, which sends %s (%s)",
		supervisor.SignalName(c.stopSignal), c.stopSignalFrom)
	if m := mapString(c.signalMap); m != "" {
		e.line("     other signals are forwarded as they come, except %s", m)
	}
	if c.postStart != nil {
		step("postStart %s (at most %s); readiness and startup wait for it; failure stops the child, exit 125",
			hookString(c.postStart), c.postStart.MaxDuration())
	}
	if r := c.ready; r != nil {
		step("readiness probe %s every %s (timeout %s, first after %s): ready after %d success(es), unready after %d failure(s)",
			r.Target, r.Period, r.Timeout, r.InitialDelay, r.SuccessThreshold, r.FailureThreshold)
	}
	if l := c.live; l != nil {
		step("liveness probe %s every %s (timeout %s, first %s after postStart): /livez fails after %d failure(s)",
			l.Target, l.Period, l.Timeout, l.InitialDelay, l.FailureThreshold)
	}
	if c.listen != "" {
		e.line("  endpoints on %s: /readyz /livez /startupz /metrics", c.listen)
	}
	if c.adminListen != "" {
		e.line("  admin on %s: POST /drain, POST /quitquitquit", c.adminListen)
	}
	if c.tombstoneDir != "" {
		e.line("  tombstone %s/%s.json", c.tombstoneDir, c.name)
	}
	if c.hookLogDir != "" {
		e.line("  hook log %s/%s.hooks.log", c.hookLogDir, c.name)
	}
	if len(c.exitWith) > 0 {
		e.line("  stops once %s exited (tombstones in %s)", strings.Join(c.exitWith, ", "), c.tombstoneDir)
	}
	e.line("")
}

// shutdown draws the stop timeline (drain.Budget.Timeline): one line of
// arrows, then each step with the latest time it can happen.
func (e *explainWriter) shutdown(c *runConfig) {
	type row struct {
		at    time.Duration
		what  string
		arrow string
	}
	var rows []row
	sig := supervisor.SignalName(c.stopSignal)
	for _, s := range c.budget().Timeline() {
		r := row{at: s.At}
		switch s.Name {
		case drain.StepDraining:
			r.what, r.arrow = "SIGTERM received: /readyz answers 503, tombstone says draining", "SIGTERM 0s -> readiness off"
			if c.drain.KeepReady {
				r.what, r.arrow = "SIGTERM received: /readyz stays 200 (--drain-readiness keep) until the readiness probe fails or the stop signal is sent, tombstone says draining", "SIGTERM 0s -> draining"
			}
		case drain.StepDrainDelay:
			r.what = fmt.Sprintf("drain delay %s: endpoints and kube-proxy drop the pod, the app still serves", s.Max)
			r.arrow = "drain " + fmtSeconds(s.Max)
			if c.drain.DrainQuiet > 0 {
				r.what = fmt.Sprintf("adaptive drain: until neither a new connection nor a request byte on an open one reaches port %s for %s, at least %s, at most %s (--drain-delay); "+
					"lifecycled's own probes do not count; it cannot see a client silent for longer than %s, UDP, or a Unix socket",
					joinInts(c.drain.QuietPorts), c.drain.DrainQuiet, c.drain.DrainMin, s.Max, c.drain.DrainQuiet)
				r.arrow = "drain <=" + fmtSeconds(s.Max)
			}
		case drain.StepDrainConnections:
			r.what = fmt.Sprintf("wait for connections to port %d to end (at most %s)", c.drain.DrainPort, s.Max)
			r.arrow = "connections <=" + fmtSeconds(s.Max)
		case drain.StepPreStop:
			r.what = fmt.Sprintf("preStop %s (at most %s; a failure is logged, the stop goes on)", hookString(c.preStop), s.Max)
			r.arrow = "preStop <=" + fmtSeconds(s.Max)
		case drain.StepGrace:
			r.what, r.arrow = sig+" to the child; lifecycled exits as soon as its process group is gone", sig+" at "+fmtSeconds(s.At)
		case drain.StepKill:
			r.what = fmt.Sprintf("SIGKILL to the process group (grace period %s)", c.gracePeriod)
			r.arrow = "SIGKILL at " + fmtSeconds(s.At)
		case drain.StepKubeletKill:
			r.what = "the kubelet's SIGKILL (terminationGracePeriodSeconds)"
		}
		rows = append(rows, r)
	}

	e.line("Stop sequence (on SIGTERM, SIGINT or POST /quitquitquit):")
	var arrows []string
	for _, r := range rows {
		if r.arrow != "" {
			arrows = append(arrows, r.arrow)
		}
	}
	e.line("  %s", strings.Join(arrows, " -> "))
	if c.terminationGrace > 0 {
		e.line("  (kubelet SIGKILL at %s)", fmtSeconds(c.terminationGrace))
	}
	e.line("")
	for _, r := range rows {
		e.line("  %8s  %s", fmtSeconds(r.at), r.what)
	}
	e.line("  Times are the latest each step can come. A second SIGTERM or SIGINT skips")
	e.line("  what is left of the waits before the stop signal.")
	e.line("")
}

// budget prints the verdict and returns the exit code.
func (e *explainWriter) budget(c *runConfig) int {
	if c.terminationGrace <= 0 {
		e.line("Budget: not checked; give --termination-grace-period (the pod's terminationGracePeriodSeconds).")
		return exitOK
	}
	if err := c.budget().Check(); err != nil {
		e.line("Budget: DOES NOT FIT in terminationGracePeriodSeconds=%s: %v", fmtSeconds(c.terminationGrace), err)
		return 1
	}
	e.line("Budget: fits in terminationGracePeriodSeconds=%s.", fmtSeconds(c.terminationGrace))
	return exitOK
}

func fmtSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// hookString shows a hook as the user gave it: sh -c "..." for the shell
// form, the JSON array for the exec form, the URL, or the sleep, with the
// secrets of its URLs masked.
func hookString(h *hooks.Hook) string {
	switch {
	case h.Handler() == hooks.HandlerHTTPGet:
		return h.Handler() + " " + redact.URL(h.Command()) // line masks the rest
	case h.Handler() == hooks.HandlerExec && h.Shell:
		return "exec sh -c " + strconv.Quote(h.Command())
	}
	return h.Handler() + " " + h.Command()
}

// commandString shows argv as explain prints it, each argument that is a
// URL masked as one.
func commandString(argv []string) string {
	shown := make([]string, len(argv))
	for i, a := range argv {
		shown[i] = redact.URL(a)
	}
	return strings.Join(shown, " ")
}

// mapString lists the rewrites of forwarded signals, TERM and INT left out
// (they choose the stop signal).
func mapString(m supervisor.SignalMap) string {
	var out []string
	for from, to := range m {
		if from == syscall.SIGTERM || from == syscall.SIGINT {
			continue
		}
		out = append(out, supervisor.SignalName(from)+" -> "+supervisor.SignalName(to))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// joinInts writes ports as "8080" or "8080, 8443".
func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ", ")
}
