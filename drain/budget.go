package drain

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// minStopSignalRoom is the least time the child should get between the stop
// signal and the kubelet's SIGKILL. The kubelet itself never gives less
// (minimumGracePeriodInSeconds in its killContainer): a preStop that runs
// over terminationGracePeriodSeconds earns a one-off 2s extension for the
// stop signal. lifecycled's steps run inside the kubelet's period, after its
// SIGTERM, and get no such extension.
const minStopSignalRoom = 2 * time.Second

// KubeletGrace is what the kubelet leaves of the pod's
// terminationGracePeriodSeconds (tgp) to a container whose SIGTERM it sends
// delay into the pod's termination: the kubelet first runs the container's
// own preStop hook, and a native sidecar then waits for its turn, both
// bounded by tgp and both deducted from it; whatever is left, never less
// than 2s, is the time between the SIGTERM and the kubelet's SIGKILL, the
// TerminationGracePeriod a Budget is checked against.
func KubeletGrace(tgp, delay time.Duration) time.Duration {
	left := tgp - min(delay, tgp)
	return max(left, minStopSignalRoom)
}

// Budget is the worst-case length of each step of the stop sequence,
// checked against the pod's terminationGracePeriodSeconds
// (--termination-grace-period) at start-up and by `lifecycled explain`.
type Budget struct {
	// DrainDelay is --drain-delay.
	DrainDelay time.Duration
	// DrainTimeout is --drain-timeout, or 0 without --drain-connections.
	DrainTimeout time.Duration
	// PreStopTimeout is the longest the preStop hook can run
	// (Hook.MaxDuration), or 0 without one.
	PreStopTimeout time.Duration
	// GracePeriod is --grace-period.
	GracePeriod time.Duration
	// TerminationGracePeriod is the pod's terminationGracePeriodSeconds;
	// 0 means unknown, and nothing is checked.
	TerminationGracePeriod time.Duration
}

// beforeStopSignal is when the stop signal goes out at the latest.
func (b Budget) beforeStopSignal() time.Duration {
	return b.DrainDelay + b.DrainTimeout + b.PreStopTimeout
}

// total is when lifecycled's own SIGKILL goes out at the latest.
func (b Budget) total() time.Duration {
	return b.beforeStopSignal() + b.GracePeriod
}

// Longest is the longest the stop sequence can take, from the SIGTERM to
// lifecycled's own SIGKILL; the kubelet's SIGKILL may come earlier.
func (b Budget) Longest() time.Duration { return b.total() }

// Check returns nil if steps 2–6 of the stop sequence fit in
// TerminationGracePeriod, and otherwise an error saying by how much they
// overrun and which steps the kubelet's SIGKILL would cut. It also
// complains when the stop signal would come less than 2s before the
// kubelet's SIGKILL, since the child could not shut down cleanly in that.
func (b Budget) Check() error {
	tgp := b.TerminationGracePeriod
	if tgp <= 0 {
		return nil
	}
	var problems []string
	if total := b.total(); total > tgp {
		var cut []string
		for _, s := range b.spans() {
			if s.Max > 0 && s.At+s.Max > tgp {
				cut = append(cut, s.Name)
			}
		}
		problems = append(problems, fmt.Sprintf(
			"the stop sequence takes up to %s (%s) but the termination grace period is %s: %s over, so the kubelet's SIGKILL would cut short %s",
			total, b.breakdown(), tgp, total-tgp, strings.Join(cut, ", ")))
	}
	switch room := tgp - b.beforeStopSignal(); {
	case room <= 0:
		problems = append(problems, fmt.Sprintf(
			"the stop signal would come %s after the kubelet's SIGKILL, so the child never gets it", -room))
	case room < minStopSignalRoom:
		problems = append(problems, fmt.Sprintf(
			"the stop signal would come only %s before the kubelet's SIGKILL (less than %s)", room, minStopSignalRoom))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// breakdown spells out the sum Check complains about.
func (b Budget) breakdown() string {
	parts := []string{
		"drain delay " + b.DrainDelay.String(),
		"drain timeout " + b.DrainTimeout.String(),
		"preStop " + b.PreStopTimeout.String(),
		"grace period " + b.GracePeriod.String(),
	}
	return strings.Join(parts, " + ")
}

// Step is one point of the stop timeline, for explain's diagram.
type Step struct {
	// Name says what happens, in words.
	Name string
	// At is when it starts at the latest, counted from the SIGTERM.
	At time.Duration
	// Max is the longest it can last; 0 for an instant.
	Max time.Duration
}

// spans are the steps that take time, in order.
func (b Budget) spans() []Step {
	var steps []Step
	at := time.Duration(0)
	add := func(name string, d time.Duration) {
		if d > 0 {
			steps = append(steps, Step{Name: name, At: at, Max: d})
			at += d
		}
	}
	add("drain delay", b.DrainDelay)
	add("drain connections", b.DrainTimeout)
	add("preStop hook", b.PreStopTimeout)
	// The stop signal goes out whatever the grace period.
	return append(steps, Step{Name: "grace period", At: at, Max: b.GracePeriod})
}

// Timeline returns the stop sequence as steps with their latest start
// offsets: SIGTERM, readiness off, drain delay, drain connections, preStop,
// stop signal, SIGKILL, and the kubelet's SIGKILL if the termination grace
// period is known, all in time order. Steps that are not configured are
// left out.
func (b Budget) Timeline() []Step {
	steps := []Step{
		{Name: "SIGTERM received"},
		{Name: "readiness off"},
	}
	for _, s := range b.spans() {
		if s.Name == "grace period" {
			s.Name = "stop signal, grace period"
		}
		steps = append(steps, s)
	}
	steps = append(steps, Step{Name: "SIGKILL", At: b.total()})
	if b.TerminationGracePeriod > 0 {
		steps = append(steps, Step{Name: "kubelet SIGKILL", At: b.TerminationGracePeriod})
	}
	// Stable, so that the kubelet's SIGKILL lands after lifecycled's when
	// they coincide, and zero-length steps keep their order.
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	return steps
}
