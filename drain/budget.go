package drain

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
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
	// DrainPort is --drain-connections: with it, the connection drain is a
	// step of the timeline even when DrainTimeout is 0.
	DrainPort int
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
		for _, s := range b.Timeline() {
			if s.Max > 0 && s.At+s.Max > tgp {
				cut = append(cut, words(s.Name))
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

// Step is one step of the stop timeline.
type Step struct {
	// Name is the step: StepDraining (SIGTERM received, readiness off),
	// StepDrainDelay, StepDrainConnections, StepPreStop, StepGrace (the
	// stop signal, then the grace period), StepKill (lifecycled's
	// SIGKILL) or StepKubeletKill.
	Name string
	// At is when it starts at the latest, counted from the SIGTERM.
	At time.Duration
	// Max is the longest it can last; 0 for an instant.
	Max time.Duration
}

// StepKubeletKill is the kubelet's own SIGKILL at the end of the pod's
// terminationGracePeriodSeconds: a step of the timeline, not of Sequence.
const StepKubeletKill = "kubelet_kill"

// words name the steps that take time in Check's complaints.
func words(step string) string {
	switch step {
	case StepDrainDelay:
		return "drain delay"
	case StepDrainConnections:
		return "drain connections"
	case StepPreStop:
		return "preStop hook"
	}
	return "grace period"
}

// Timeline returns the stop sequence as steps with their latest start: the
// SIGTERM (readiness off at once), the drain delay, the connection drain,
// preStop, the stop signal and grace period, SIGKILL, and the kubelet's
// SIGKILL if the termination grace period is known, in time order. Steps
// that are not configured are left out. `lifecycled explain` draws it, and
// Check names the steps it would cut from it.
func (b Budget) Timeline() []Step {
	steps := []Step{{Name: StepDraining}}
	at := time.Duration(0)
	add := func(name string, d time.Duration, on bool) {
		if on {
			steps = append(steps, Step{Name: name, At: at, Max: d})
			at += d
		}
	}
	add(StepDrainDelay, b.DrainDelay, b.DrainDelay > 0)
	add(StepDrainConnections, b.DrainTimeout, b.DrainPort != 0 || b.DrainTimeout > 0)
	add(StepPreStop, b.PreStopTimeout, b.PreStopTimeout > 0)
	// The stop signal goes out whatever the grace period.
	add(StepGrace, b.GracePeriod, true)
	steps = append(steps, Step{Name: StepKill, At: at})
	if b.TerminationGracePeriod > 0 {
		steps = append(steps, Step{Name: StepKubeletKill, At: b.TerminationGracePeriod})
	}
	// Stable, so that the kubelet's SIGKILL lands after lifecycled's when
	// they coincide, and zero-length steps keep their order.
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	return steps
}

// Seconds writes a duration as the timeline and its checks show one: 30s,
// 2.5s, 0.3s (Kubernetes' *Seconds fields, not Go's 300ms).
func Seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}
