package podspec

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/lifecycle"
)

// Stop is when the kubelet stops one container of a pod being deleted, as
// its killContainer does: it runs the container's own preStop hook first
// (bounded by terminationGracePeriodSeconds), a native sidecar then waits
// until the app containers and the sidecars after it have stopped, and the
// time both took is deducted from the grace period; the runtime's SIGTERM
// comes after that, its SIGKILL after what is left, at least 2s.
type Stop struct {
	// SIGTERM is when the SIGTERM comes at the latest, counted from the
	// start of the pod's termination.
	SIGTERM time.Duration
	// Grace is the time from that SIGTERM to the kubelet's SIGKILL: the
	// TerminationGracePeriod to check the container's drain.Budget against.
	Grace time.Duration
	// Because says what delays the SIGTERM, in words; empty when nothing.
	Because []string
}

// kubeletPodMessageMax is the kubelet's limit on a pod's termination
// messages: it reads the last lifecycle.MaxTerminationMessage bytes of a
// container's file (kuberuntime's getTerminationMessage, tail.ReadAtMost),
// then its status manager keeps the first kubeletPodMessageMax ÷
// (containers + init containers) bytes of each container's message
// (normalizeStatus, MaxPodTerminationMessageLogLength).
const kubeletPodMessageMax = 12 * 1024

// kubeletMessageLimit is how much of a container's termination message
// reaches the pod's status.
func kubeletMessageLimit(spec *PodSpec) int {
	limit := lifecycle.MaxTerminationMessage
	if n := len(spec.Containers) + len(spec.InitContainers); n > 0 {
		limit = min(limit, kubeletPodMessageMax/n)
	}
	return limit
}

// preStop is a container's own (the kubelet's) preStop hook.
type preStop struct {
	// max is how long it runs at most, if known.
	max   time.Duration
	known bool
	// what says what it is, e.g. "sleep 5s" or "exec [...]".
	what string
}

// because says what the hook adds before the SIGTERM, if anything.
func (ps preStop) because() []string {
	switch {
	case !ps.known:
		return []string{"the kubelet's preStop " + ps.what + ", of a length the manifest does not say, counted as 0"}
	case ps.max > 0:
		return []string{"the kubelet's preStop " + ps.what}
	}
	return nil
}

// kubeletPreStop reads c's preStop hook. sleep is exact; an exec that only
// sleeps (sleep N, sh -c "sleep N", lifecycled sleep N) is read as that
// sleep; any other exec or an httpGet runs for a time the manifest does not
// say.
func kubeletPreStop(c *Container) preStop {
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		return preStop{known: true}
	}
	h := c.Lifecycle.PreStop
	switch {
	case h.Sleep != nil:
		d := time.Duration(h.Sleep.Seconds) * time.Second
		return preStop{max: d, known: true, what: "sleep " + d.String()}
	case h.Exec != nil:
		what := "exec " + quoteArgv(h.Exec.Command)
		if d, ok := sleepCommand(h.Exec.Command); ok {
			return preStop{max: d, known: true, what: what}
		}
		return preStop{what: what}
	case h.HTTPGet != nil:
		return preStop{what: fmt.Sprintf("httpGet port %s path %s", h.HTTPGet.Port, h.HTTPGet.Path)}
	}
	return preStop{known: true}
}

// PreStopSleep reports whether c has a preStop hook, and if it does,
// whether it does nothing but sleep (the sleep handler, or an exec of
// sleep N, sh -c "sleep N" or lifecycled sleep N), and for how long.
func (c *Container) PreStopSleep() (d time.Duration, has, sleeps bool) {
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		return 0, false, false
	}
	ps := kubeletPreStop(c)
	h := c.Lifecycle.PreStop
	return ps.max, true, ps.known && (h.Sleep != nil || h.Exec != nil)
}

// shellSleepRE is compiled on first use: package initialisation is paid
// by every start of lifecycled, and only explain -f reads pod specs.
var shellSleepRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\s*(?:exec\s+)?sleep\s+([^\s;]+)\s*;?\s*$`)
})

// sleepCommand reads the length of an exec hook that does nothing but
// sleep.
func sleepCommand(argv []string) (time.Duration, bool) {
	if len(argv) == 0 {
		return 0, false
	}
	switch base := path.Base(argv[0]); {
	case base == "sleep" && len(argv) == 2:
		return sleepArg(argv[1])
	case base == "lifecycled" && len(argv) == 3 && argv[1] == "sleep":
		return sleepArg(argv[2])
	case (base == "sh" || base == "bash" || base == "ash" || base == "dash") && len(argv) == 3 && argv[1] == "-c":
		if m := shellSleepRE().FindStringSubmatch(argv[2]); m != nil {
			return sleepArg(m[1])
		}
	}
	return 0, false
}

// sleepArg reads what sleep(1) and `lifecycled sleep` take: a number of
// seconds with an optional s, m, h or d suffix, or a Go duration.
func sleepArg(s string) (time.Duration, bool) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, true
	}
	unit := time.Second
	switch {
	case strings.HasSuffix(s, "m"):
		unit, s = time.Minute, s[:len(s)-1]
	case strings.HasSuffix(s, "h"):
		unit, s = time.Hour, s[:len(s)-1]
	case strings.HasSuffix(s, "d"):
		unit, s = 24*time.Hour, s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e9 {
		return 0, false
	}
	return time.Duration(f * float64(unit)), true
}

func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// stops computes every container's Stop in a pod being deleted, and when
// each is gone at the latest. longest gives, for a container lifecycled
// runs, the longest its stop sequence takes after the SIGTERM; a container
// it does not run is counted as gone at its SIGTERM, since the manifest
// does not say how long it takes.
func stops(spec *PodSpec, longest func(c *Container) (time.Duration, bool)) map[string]Stop {
	tgp := spec.TerminationGracePeriod()
	out := map[string]Stop{}
	gone := func(c *Container, st Stop) time.Duration {
		if d, ok := longest(c); ok {
			return st.SIGTERM + min(d, st.Grace)
		}
		return st.SIGTERM
	}
	// afterPreStop is the Stop of a container that waits for nothing but
	// its own preStop.
	afterPreStop := func(c *Container) Stop {
		ps := kubeletPreStop(c)
		st := Stop{SIGTERM: min(ps.max, tgp), Because: ps.because()}
		st.Grace = drain.KubeletGrace(tgp, st.SIGTERM)
		return st
	}
	// App containers stop all at once, each after its own preStop.
	var appsGone time.Duration
	var apps, unknown []string
	for i := range spec.Containers {
		c := &spec.Containers[i]
		st := afterPreStop(c)
		out[c.Name] = st
		appsGone = max(appsGone, gone(c, st))
		apps = append(apps, c.Name)
		if _, ok := longest(c); !ok {
			unknown = append(unknown, c.Name)
		}
	}
	// A plain init container is stopped only if the pod goes while it
	// runs, as an app container would be.
	for i := range spec.InitContainers {
		if c := &spec.InitContainers[i]; c.RestartPolicy != "Always" {
			out[c.Name] = afterPreStop(c)
		}
	}
	// Native sidecars stop after the app containers, the last one first:
	// each waits for the apps and for the sidecar after it.
	prev, prevGone := strings.Join(apps, ", "), appsGone
	for i := len(spec.InitContainers) - 1; i >= 0; i-- {
		c := &spec.InitContainers[i]
		if c.RestartPolicy != "Always" {
			continue
		}
		ps := kubeletPreStop(c)
		st := Stop{SIGTERM: min(max(ps.max, prevGone), tgp), Because: ps.because()}
		if prevGone > ps.max && prev != "" {
			st.Because = append(st.Because, fmt.Sprintf("a native sidecar, it waits until %s stopped: up to %s", prev, drain.Seconds(prevGone)))
		}
		if len(unknown) > 0 {
			st.Because = append(st.Because, fmt.Sprintf("%s, not run by lifecycled, counted as stopping at once", strings.Join(unknown, ", ")))
		}
		st.Grace = drain.KubeletGrace(tgp, st.SIGTERM)
		out[c.Name] = st
		prev, prevGone = c.Name, max(prevGone, gone(c, st))
	}
	return out
}
