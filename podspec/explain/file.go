package explain

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/podspec"
)

// File writes, for each workload of the manifest name, the timeline of
// every container that runs lifecycled, then one line per problem
// podspec.Check finds, and returns explain -f's exit code: 0 when there is
// none, 1 when there are. images are the --image arguments.
func (e *Writer) File(name string, workloads []podspec.Workload, images []string) int {
	var problems []string
	checked := 0
	for i := range workloads {
		wl := &workloads[i]
		report := podspec.Check(wl, images)
		e.workload(name, wl, images, report)
		checked += len(report.Lifecycled)
		for _, p := range report.Problems {
			where := wl.String()
			if p.Container != "" {
				where += " container " + p.Container
			}
			problems = append(problems, redact.Line("%s: %s: %s", name, where, p.Text))
		}
	}
	if checked == 0 {
		problems = append(problems, redact.Line("%s: no container runs lifecycled: its command[0] must be lifecycled, or its image one given with --image IMAGE (an image whose ENTRYPOINT is lifecycled)", name))
	}
	if len(problems) == 0 {
		e.line("No problems found.")
		return 0
	}
	e.line("Problems:")
	for _, p := range problems {
		fmt.Fprint(e.w, p)
	}
	return 1
}

// workload prints, for each container of wl that runs lifecycled,
// the timeline `lifecycled explain` prints for its flags, against the time
// the kubelet really leaves it.
func (e *Writer) workload(file string, wl *podspec.Workload, images []string, r podspec.Report) {
	tgp := wl.Spec.TerminationGracePeriod()
	for _, ch := range r.Lifecycled {
		c := ch.Container
		kind := "container"
		switch {
		case ch.Sidecar:
			kind = "native sidecar"
		case ch.Init:
			kind = "init container"
		}
		e.line("=== %s: %s %s %s (terminationGracePeriodSeconds %s)", file, wl, kind, c.Name, drain.Seconds(tgp))
		cfg := ch.Settings
		if cfg == nil {
			e.line("  lifecycled would refuse its arguments: see Problems below.")
			e.line("")
			continue
		}
		st := ch.Stop
		if len(st.Because) > 0 {
			e.line("The kubelet's SIGTERM comes %s into the pod's termination (%s); lifecycled then has %s until the kubelet's SIGKILL. Times below count from that SIGTERM.",
				drain.Seconds(st.SIGTERM), strings.Join(st.Because, "; "), drain.Seconds(st.Grace))
		}
		cfg.TerminationGrace = st.Grace
		e.startup(cfg)
		e.shutdown(cfg)
		if st.Grace == tgp {
			e.budget(cfg)
		} else if err := cfg.Budget().Check(); err != nil {
			e.line("Budget: DOES NOT FIT in the %s the kubelet leaves lifecycled: %v", drain.Seconds(st.Grace), err)
		} else {
			e.line("Budget: fits in the %s the kubelet leaves lifecycled.", drain.Seconds(st.Grace))
		}
		e.line("")
	}
	var others []string
	for _, c := range append(append([]podspec.Container(nil), wl.Spec.InitContainers...), wl.Spec.Containers...) {
		if inv, ok := c.Lifecycled(images); ok && inv.Subcommand != "run" {
			others = append(others, fmt.Sprintf("%s (lifecycled %s)", c.Name, inv.Subcommand))
			continue
		}
		if !slices.ContainsFunc(r.Lifecycled, func(ch podspec.Checked) bool { return ch.Container.Name == c.Name }) {
			others = append(others, c.Name)
		}
	}
	if len(others) > 0 {
		e.line("=== %s: %s: not checked (no `lifecycled run` in command or --image): %s", file, wl, strings.Join(others, ", "))
		e.line("")
	}
}

// PrintFileUsage documents explain -f for `lifecycled explain
// --help`.
func PrintFileUsage(w io.Writer) {
	fmt.Fprint(w, `
lifecycled explain -f FILE [--image IMAGE]...
  Check the Kubernetes manifest FILE (- for stdin; multi-document YAML and
  Lists; Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob).
  For every container that runs lifecycled it prints the timeline above, as
  the kubelet will run it, then one line per problem:
    FILE: Kind/name container C: problem
  Checked: the stop sequence against terminationGracePeriodSeconds (default
  30s), after the kubelet's own preStop hook and, for native sidecars, after
  the containers they wait for, with the kubelet's 2s minimum; probes against
  the --listen port and paths (/readyz, /livez, /startupz); a readinessProbe
  when --listen is set; a --drain-delay (or a kubelet preStop sleep) when there
  is a readinessProbe; --termination-log against terminationMessagePath;
  --exit-with names against the tombstones of the pod's containers on a shared
  volume; lifecycle.stopSignal; ports taken twice; --ready on lifecycled's own
  port; a native sidecar's startupProbe; --termination-log-max against the
  kubelet's 12288 / (containers + init containers), with
  --termination-log-tail; --exit-with under restartPolicy OnFailure (make
  it a native sidecar); lifecycled's arguments, literal LIFECYCLED_* env
  and --config file (from a ConfigMap of FILE mounted there), read as run
  reads them. FILE is read up to 1 MiB and 1,000 documents; a key given
  twice in one mapping, or $(VAR) references expanding past 128 KiB, make
  it a bad FILE.
  A container runs lifecycled when command[0] is lifecycled (any directory),
  or when it has no command and its image is given with --image: an image's
  ENTRYPOINT is not in the manifest.
  --image IMAGE   an image whose ENTRYPOINT is lifecycled (repeatable); without
                  a tag or digest, every tag of that repository
  Exit: 0 no problem, 1 problems, 2 FILE unreadable or not a manifest.
`)
}
