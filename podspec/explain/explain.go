// Package explain writes what `lifecycled explain` and `explain -f` print:
// a run's start-up, its stop timeline (drain.Budget.Timeline) and the
// verdict of its budget, for the settings given or for each container of a
// manifest that runs lifecycled. It sits under podspec, whose report it
// renders: settings are read only by cmd/lifecycled and podspec.
package explain

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/hooks"
	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/probes"
	"github.com/lifecycled/lifecycled/settings"
	"github.com/lifecycled/lifecycled/supervisor"
)

// Writer writes explain's text: the configuration as it will run, the stop
// timeline and the budget verdict.
type Writer struct {
	w io.Writer
	// version is lifecycled's, for the first line.
	version string
}

// NewWriter writes to w, naming lifecycled's version.
func NewWriter(w io.Writer, version string) *Writer { return &Writer{w: w, version: version} }

// Run writes the start-up, the stop timeline and the budget of r, and
// returns explain's exit code: 0 when the stop sequence fits (or nothing
// was given to check it against), 1 when it does not.
func (e *Writer) Run(r *settings.Run) int {
	e.startup(r)
	e.shutdown(r)
	return e.budget(r)
}

// line writes one line with the secrets of the URLs it names masked (the
// commands, targets and hooks explain and explain -f print may hold
// passwords and tokens; URL values are masked where they are known whole,
// and this catches the rest).
func (e *Writer) line(format string, a ...any) {
	fmt.Fprintln(e.w, redact.URLs(fmt.Sprintf(format, a...)))
}

func (e *Writer) startup(c *settings.Run) {
	e.line("lifecycled %s: %s (name %q)", e.version, commandString(c.Config.Command), c.Config.Name)
	e.line("")
	e.line("Start-up")
	n := 0
	step := func(format string, a ...any) {
		n++
		e.line("  %d. "+format, append([]any{n}, a...)...)
	}
	if len(c.Config.Waits) > 0 {
		limit := "no limit"
		if c.Config.Wait.Timeout > 0 {
			limit = c.Config.Wait.Timeout.String() + ", then exit 124"
		}
		step("wait for dependencies, all at once, retrying every %s up to %s (%s):", probes.FirstBackoff, c.Config.Wait.MaxInterval, limit)
		for _, t := range c.Config.Waits {
			e.line("       %s", t)
		}
	}
	mode := "its process group"
	if c.Config.SingleChild {
		mode = "the child alone"
	}
	step("start the command in its own process group; signals go to %s", mode)
	e.line("     SIGTERM and SIGINT are not forwarded: they start the stop sequence, which sends %s (%s)",
		supervisor.SignalName(c.Config.Stop.StopSignal), c.StopSignalFrom)
	if m := mapString(c.Config.SignalMap); m != "" {
		e.line("     other signals are forwarded as they come, except %s", m)
	}
	if c.Config.PostStart != nil {
		step("postStart %s (at most %s); readiness and startup wait for it; failure stops the child, exit 125",
			hookString(c.Config.PostStart), c.Config.PostStart.MaxDuration())
	}
	if r := c.Config.Ready; r != nil {
		step("readiness probe %s every %s (timeout %s, first after %s): ready after %d success(es), unready after %d failure(s)",
			r.Target, r.Period, r.Timeout, r.InitialDelay, r.SuccessThreshold, r.FailureThreshold)
	}
	if l := c.Config.Live; l != nil {
		step("liveness probe %s every %s (timeout %s, first %s after postStart): /livez fails after %d failure(s)",
			l.Target, l.Period, l.Timeout, l.InitialDelay, l.FailureThreshold)
	}
	if c.Listen != "" {
		e.line("  endpoints on %s: /readyz /livez /startupz /metrics", c.Listen)
	}
	if c.AdminListen != "" {
		e.line("  admin on %s: POST /drain, POST /quitquitquit", c.AdminListen)
	}
	if c.Config.TombstoneDir != "" {
		e.line("  tombstone %s/%s.json", c.Config.TombstoneDir, c.Config.Name)
	}
	if c.Config.HookLogDir != "" {
		e.line("  hook log %s/%s.hooks.log", c.Config.HookLogDir, c.Config.Name)
	}
	if len(c.Config.ExitWith) > 0 {
		e.line("  stops once %s exited (tombstones in %s)", strings.Join(c.Config.ExitWith, ", "), c.Config.TombstoneDir)
	}
	e.line("")
}

// shutdown draws the stop timeline (drain.Budget.Timeline): one line of
// arrows, then each step with the latest time it can happen.
func (e *Writer) shutdown(c *settings.Run) {
	type row struct {
		at    time.Duration
		what  string
		arrow string
	}
	var rows []row
	sig := supervisor.SignalName(c.Config.Stop.StopSignal)
	for _, s := range c.Budget().Timeline() {
		r := row{at: s.At}
		switch s.Name {
		case drain.StepDraining:
			r.what, r.arrow = "SIGTERM received: /readyz answers 503, tombstone says draining", "SIGTERM 0s -> readiness off"
			if c.Config.Stop.KeepReady {
				r.what, r.arrow = "SIGTERM received: /readyz stays 200 (--drain-readiness keep) until the readiness probe fails or the stop signal is sent, tombstone says draining", "SIGTERM 0s -> draining"
				if c.Config.Ready == nil {
					// Nothing but the stop signal can turn it off: an app
					// that stops serving on its own SIGTERM-like cue
					// (a closed listener) would still be shown ready.
					r.what = "SIGTERM received: /readyz stays 200 (--drain-readiness keep) until the stop signal is sent, tombstone says draining; " +
						"WARNING: without --ready nothing tells lifecycled the app stopped serving before then, so give --ready"
				}
			}
		case drain.StepDrainDelay:
			r.what = fmt.Sprintf("drain delay %s: endpoints and kube-proxy drop the pod, the app still serves", s.Max)
			r.arrow = "drain " + drain.Seconds(s.Max)
			if c.Config.Stop.DrainQuiet > 0 {
				r.what = fmt.Sprintf("adaptive drain: until neither a new connection nor a request byte on an open one reaches port %s for %s, at least %s, at most %s (--drain-delay); "+
					"lifecycled's own probes do not count; it cannot see a client silent for longer than %s, UDP, or a Unix socket",
					joinInts(c.Config.Stop.QuietPorts), c.Config.Stop.DrainQuiet, c.Config.Stop.DrainMin, s.Max, c.Config.Stop.DrainQuiet)
				r.arrow = "drain <=" + drain.Seconds(s.Max)
			}
		case drain.StepDrainConnections:
			r.what = fmt.Sprintf("wait for connections to port %d to end (at most %s)", c.Config.Stop.DrainPort, s.Max)
			r.arrow = "connections <=" + drain.Seconds(s.Max)
		case drain.StepPreStop:
			r.what = fmt.Sprintf("preStop %s (at most %s; a failure is logged, the stop goes on)", hookString(c.Config.Stop.PreStop), s.Max)
			r.arrow = "preStop <=" + drain.Seconds(s.Max)
		case drain.StepGrace:
			r.what, r.arrow = sig+" to the child; lifecycled exits as soon as its process group is gone", sig+" at "+drain.Seconds(s.At)
		case drain.StepKill:
			r.what = fmt.Sprintf("SIGKILL to the process group (grace period %s)", c.Config.Stop.GracePeriod)
			r.arrow = "SIGKILL at " + drain.Seconds(s.At)
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
	if c.TerminationGrace > 0 {
		e.line("  (kubelet SIGKILL at %s)", drain.Seconds(c.TerminationGrace))
	}
	e.line("")
	for _, r := range rows {
		e.line("  %8s  %s", drain.Seconds(r.at), r.what)
	}
	e.line("  Times are the latest each step can come. A second SIGTERM or SIGINT skips")
	e.line("  what is left of the waits before the stop signal.")
	e.report(c)
	e.line("")
}

// report says what the stop's last line, the drain report, will tell, and
// where else it goes.
func (e *Writer) report(c *settings.Run) {
	st := c.Config.Stop
	what := "whether SIGKILL was needed and how long the stop took"
	if c.TerminationGrace > 0 {
		what += " (and its share of " + drain.Seconds(c.TerminationGrace) + ")"
	}
	if len(st.QuietPorts) > 0 {
		e.line("  At the end, one \"drain report\" line: the last new connection and request byte to port %s after SIGTERM,", joinInts(st.QuietPorts))
		e.line("  the connections open at the stop signal and at SIGKILL, %s.", what)
	} else {
		e.line("  At the end, one \"drain report\" line: %s; no port of the app is known", what)
		e.line("  (a tcp, http or grpc --ready or --live, or --drain-connections), so no traffic is watched.")
	}
	if c.Config.TerminationLog != "" {
		e.line("  Its summary ends the termination message when the reason and the stderr tail leave room.")
	}
	if c.Config.Events {
		e.line("  --events: also posted as a Kubernetes Event on the pod (Warning if SIGKILL was needed or cut connections),")
		e.line("  at most 2s after the stop; needs POD_NAME and POD_NAMESPACE (downward API) and RBAC create on events.")
	}
}

// budget prints the verdict and returns the exit code.
func (e *Writer) budget(c *settings.Run) int {
	if c.TerminationGrace <= 0 {
		e.line("Budget: not checked; give --termination-grace-period (the pod's terminationGracePeriodSeconds).")
		return 0
	}
	if err := c.Budget().Check(); err != nil {
		e.line("Budget: DOES NOT FIT in terminationGracePeriodSeconds=%s: %v", drain.Seconds(c.TerminationGrace), err)
		return 1
	}
	e.line("Budget: fits in terminationGracePeriodSeconds=%s.", drain.Seconds(c.TerminationGrace))
	return 0
}

// hookString shows a hook as hooks.Hook.Describe names it (its URL masked),
// the shell form as the exec it is: exec sh -c "...".
func hookString(h *hooks.Hook) string {
	if h.Handler() == hooks.HandlerExec && h.Shell {
		return "exec " + h.Describe()
	}
	return h.Describe()
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
