package podspec

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/settings"
)

// Problem is one thing wrong with a container, in one line.
type Problem struct {
	// Container is the container's name; "" for the workload as a whole.
	Container string
	Text      string
}

// Checked is a container that runs `lifecycled run`.
type Checked struct {
	Container *Container
	// Sidecar is set for a native sidecar (an init container with
	// restartPolicy Always), Init for any other init container, which
	// runs to its end before the app containers start.
	Sidecar, Init bool
	// Invocation is how the container runs lifecycled.
	Invocation Invocation
	// Settings are lifecycled's, as `lifecycled run` reads the container's
	// arguments, environment and --config file; nil if it would refuse them.
	Settings *settings.Run
	// UnseenConfig is --config FILE when the manifest does not hold the
	// file (see ErrNotInManifest), so that the settings leave it out.
	UnseenConfig string
	// Stop is when the kubelet stops the container.
	Stop Stop
}

// Report is the outcome of Check for one workload.
type Report struct {
	// Lifecycled are the containers that run `lifecycled run`, init
	// containers first, in the pod's order.
	Lifecycled []Checked
	Problems   []Problem
}

// Check finds the containers of w that run lifecycled (see
// Container.Lifecycled), reads their settings as `lifecycled run` does, and
// checks the pod as a whole.
func Check(w *Workload, images []string) Report {
	var r Report
	spec := &w.Spec
	byName := map[string]*Checked{}
	add := func(c *Container, sidecar, init bool) {
		inv, ok := c.Lifecycled(images)
		if !ok || inv.Subcommand != "run" {
			return
		}
		inv.ReadFile = func(p string) ([]byte, error) { return w.readFile(c, p) }
		ch := Checked{Container: c, Sidecar: sidecar, Init: init, Invocation: inv}
		run, unseen, err := readSettings(inv)
		if err != nil {
			r.problem(c.Name, "lifecycled would refuse its arguments and exit 2: %v", err)
		} else {
			ch.Settings, ch.UnseenConfig = run, unseen
		}
		r.Lifecycled = append(r.Lifecycled, ch)
	}
	for i := range spec.InitContainers {
		sidecar := spec.InitContainers[i].RestartPolicy == "Always"
		add(&spec.InitContainers[i], sidecar, !sidecar)
	}
	for i := range spec.Containers {
		add(&spec.Containers[i], false, false)
	}
	for i := range r.Lifecycled {
		byName[r.Lifecycled[i].Container.Name] = &r.Lifecycled[i]
	}
	longest := func(c *Container) (time.Duration, bool) {
		if ch, ok := byName[c.Name]; ok && ch.Settings != nil {
			return ch.Settings.Budget().Longest(), true
		}
		return 0, false
	}
	st := stops(spec, longest)
	for i := range r.Lifecycled {
		ch := &r.Lifecycled[i]
		ch.Stop = st[ch.Container.Name]
		r.checkInputs(ch)
		if ch.Settings == nil {
			continue
		}
		r.checkStop(spec, ch)
		r.checkProbes(spec, ch)
		r.checkFiles(ch)
		r.checkMessageSize(spec, ch)
		r.checkSidecar(ch)
		r.checkRestartPolicy(spec, ch)
	}
	r.checkPorts(spec)
	r.checkTombstones(spec)
	// One container's problems together, in the pod's order.
	order := map[string]int{}
	for i, ch := range r.Lifecycled {
		order[ch.Container.Name] = i + 1
	}
	sort.SliceStable(r.Problems, func(i, j int) bool {
		return order[r.Problems[i].Container] < order[r.Problems[j].Container]
	})
	return r
}

// readSettings reads a container's lifecycled arguments, environment and
// --config file with the run path's own loader. The file comes from the
// manifest's ConfigMap mounted there; when the manifest has none, the
// settings leave it out and unseen names it.
func readSettings(inv Invocation) (run *settings.Run, unseen string, err error) {
	if err := settings.CheckEnv(inv.Environ()); err != nil {
		return nil, "", err // the container would exit 2
	}
	s, err := settings.Load(inv.Args, inv.Getenv, inv.ReadFile)
	if errors.Is(err, ErrNotInManifest) {
		s, err = settings.Parse(inv.Args, inv.Getenv)
		unseen = s.Config
	}
	if errors.Is(err, settings.ErrHelp) {
		return nil, "", errors.New("--help: lifecycled would print its help and exit")
	}
	if err != nil {
		return nil, "", err
	}
	run, err = s.Validate()
	return run, unseen, err
}

// readyTarget is the --ready target as written, "" if none.
func readyTarget(s *settings.Run) string {
	if s.Config.Ready == nil {
		return ""
	}
	return s.Config.Ready.Target.Raw
}

// tracksStartup reports whether /startupz and /readyz wait for more than
// the process: --wait, --ready or a postStart hook.
func tracksStartup(s *settings.Run) bool {
	return len(s.Config.Waits) > 0 || s.Config.Ready != nil || s.Config.PostStart != nil
}

func (r *Report) problem(container, format string, a ...any) {
	r.Problems = append(r.Problems, Problem{Container: container, Text: fmt.Sprintf(format, a...)})
}

// checkInputs reports what lifecycled will read in the container that the
// manifest does not show, so that the rest cannot be vouched for.
func (r *Report) checkInputs(ch *Checked) {
	name := ch.Container.Name
	for _, v := range ch.Invocation.Unknown {
		if strings.HasPrefix(v, "LIFECYCLED_") {
			r.problem(name, "%s comes from valueFrom, which the manifest does not hold: explain -f checked without it", v)
		}
	}
	if ch.Settings != nil && ch.UnseenConfig != "" {
		r.problem(name, "--config %s is not in a ConfigMap of this manifest mounted there: explain -f checked without it (add the ConfigMap to the manifest, or run `lifecycled explain --config FILE` on the file)", ch.UnseenConfig)
	}
}

// checkStop checks the stop sequence against the time the kubelet leaves
// it, and the kubelet's side of the stop: its preStop hook and stop signal.
func (r *Report) checkStop(spec *PodSpec, ch *Checked) {
	c, s, stop := ch.Container, ch.Settings, ch.Stop
	tgp := spec.TerminationGracePeriod()
	ps := kubeletPreStop(c)
	if !ps.known {
		r.problem(c.Name, "the kubelet's preStop %s runs before lifecycled gets SIGTERM, for a time the manifest does not say (up to terminationGracePeriodSeconds %s), so the stop budget cannot be checked: move it into lifecycled (--pre-stop or --pre-stop-http, bounded by --hook-timeout) or make it a sleep",
			ps.what, drain.Seconds(tgp))
	}
	if sig := c.Lifecycle; sig != nil && sig.StopSignal != "" {
		if n := strings.TrimPrefix(strings.ToUpper(sig.StopSignal), "SIG"); n != "TERM" && n != "INT" {
			r.problem(c.Name, "lifecycle.stopSignal %s: lifecycled starts its stop sequence on SIGTERM or SIGINT only and forwards %s to the child, skipping the drain; leave stopSignal unset and use --stop-signal %s",
				sig.StopSignal, sig.StopSignal, n)
		}
	}
	if !ch.Sidecar && !ch.Init && c.ReadinessProbe != nil && s.Config.Stop.DrainDelay == 0 && ps.max == 0 {
		r.problem(c.Name, "no --drain-delay (nor a kubelet preStop sleep): the app gets its stop signal while endpoints and kube-proxy still send it requests, which fail; give --drain-delay 5s")
	}
	b := s.Budget()
	b.TerminationGracePeriod = stop.Grace
	if err := b.Check(); err != nil {
		r.problem(c.Name, "%s%v", stop.context(tgp), err)
	}
	if flag := s.TerminationGrace; flag > stop.Grace {
		r.problem(c.Name, "--termination-grace-period %s, but the kubelet leaves lifecycled %s of terminationGracePeriodSeconds %s (%s): lifecycled's own start-up check would pass what does not fit",
			drain.Seconds(flag), drain.Seconds(stop.Grace), drain.Seconds(tgp), strings.Join(stop.Because, "; "))
	}
	// A failed liveness or startup probe kills the container alone, with
	// the probe's own grace period if it has one.
	for _, p := range []struct {
		field string
		probe *settings.KubeProbe
	}{{"livenessProbe", c.LivenessProbe}, {"startupProbe", c.StartupProbe}} {
		if p.probe == nil || p.probe.TerminationGracePeriodSeconds == nil {
			continue
		}
		ptgp := time.Duration(*p.probe.TerminationGracePeriodSeconds) * time.Second
		b.TerminationGracePeriod = drain.KubeletGrace(ptgp, min(ps.max, ptgp))
		if err := b.Check(); err != nil {
			r.problem(c.Name, "%s.terminationGracePeriodSeconds %s: when the probe fails the stop sequence does not fit: %v", p.field, drain.Seconds(ptgp), err)
		}
	}
}

// context says why the kubelet leaves a container less than the pod's
// grace period, to open a problem's text; "" when it does not.
func (st Stop) context(tgp time.Duration) string {
	if st.SIGTERM == 0 {
		return ""
	}
	return fmt.Sprintf("the kubelet leaves lifecycled %s of terminationGracePeriodSeconds %s (its SIGTERM comes at %s: %s): ",
		drain.Seconds(st.Grace), drain.Seconds(tgp), drain.Seconds(st.SIGTERM), strings.Join(st.Because, "; "))
}

// checkSidecar checks the start order of a native sidecar: the kubelet
// starts the next containers once a sidecar's startupProbe passes, or at
// once without one.
func (r *Report) checkSidecar(ch *Checked) {
	c, s := ch.Container, ch.Settings
	if !ch.Sidecar || !tracksStartup(s) || s.Listen == "" || c.StartupProbe != nil {
		return
	}
	port := "PORT"
	if p, ok := listenPort(s.Listen); ok {
		port = fmt.Sprint(p)
	}
	r.problem(c.Name, "native sidecar without a startupProbe: the kubelet starts the containers after it as soon as its process runs, before lifecycled's --wait, --ready or postStart say it is up; add startupProbe httpGet path /startupz port %s", port)
}

// checkRestartPolicy names the trap of --exit-with in a pod the kubelet
// restarts on failure (a Job's restartPolicy OnFailure): the sidecar stops
// once the app's tombstone says exited, exits 0 and is not restarted, so
// the app's retry runs without it. A native sidecar is stopped by the
// kubelet once the app containers are done, with no tombstone to watch.
func (r *Report) checkRestartPolicy(spec *PodSpec, ch *Checked) {
	if len(ch.Settings.Config.ExitWith) == 0 || ch.Sidecar || spec.RestartPolicy != "OnFailure" {
		return
	}
	r.problem(ch.Container.Name, "--exit-with in a pod with restartPolicy OnFailure: when %s fails, the kubelet restarts it, but this container has already stopped (it exited 0, so it is not restarted) and the retry runs without it; make it a native sidecar instead: an init container with restartPolicy: Always, which the kubelet keeps running while the app containers run and stops after them, without --exit-with",
		strings.Join(ch.Settings.Config.ExitWith, ", "))
}

// checkTombstones checks that every --exit-with name is the tombstone of a
// container that writes it where the watcher looks, and that no two
// containers write the same tombstone.
func (r *Report) checkTombstones(spec *PodSpec) {
	type writer struct {
		ch  *Checked
		loc location
	}
	writers := map[string][]writer{}
	var names []string
	for i := range r.Lifecycled {
		ch := &r.Lifecycled[i]
		if ch.Settings == nil || ch.Settings.Config.TombstoneDir == "" {
			continue
		}
		n := ch.Settings.Config.Name
		if _, ok := writers[n]; !ok {
			names = append(names, n)
		}
		writers[n] = append(writers[n], writer{ch, locate(ch.Container, ch.Settings.Config.TombstoneDir)})
	}
	for _, n := range names {
		ws := writers[n]
		for i := 1; i < len(ws); i++ {
			if ws[i].loc.shared() && ws[i].loc.same(ws[0].loc) {
				r.problem(ws[i].ch.Container.Name, "writes tombstone %s, as container %s does, in the same directory: they overwrite each other; give one a different --name",
					n, ws[0].ch.Container.Name)
			}
		}
	}
	for i := range r.Lifecycled {
		ch := &r.Lifecycled[i]
		if ch.Settings == nil || len(ch.Settings.Config.ExitWith) == 0 {
			continue
		}
		c, s := ch.Container, ch.Settings
		watch := locate(c, s.Config.TombstoneDir)
		if !watch.shared() {
			r.problem(c.Name, "--exit-with watches --tombstone-dir %s, which is not on a volume: no other container can write there", s.Config.TombstoneDir)
			continue
		}
		for _, n := range s.Config.ExitWith {
			if n == s.Config.Name {
				r.problem(c.Name, "--exit-with %s names this container's own tombstone: it says exited only once this container has exited", n)
				continue
			}
			ws := writers[n]
			if len(ws) == 0 {
				r.problem(c.Name, "--exit-with %s: no container of the pod writes tombstone %s%s, so this container never stops by itself", n, n, r.tombstoneHint(spec, n, names))
				continue
			}
			if !slices.ContainsFunc(ws, func(w writer) bool { return w.loc.same(watch) }) {
				w := ws[0]
				r.problem(c.Name, "--exit-with %s: container %s writes that tombstone in %s (%s), but this container watches %s (%s)",
					n, w.ch.Container.Name, w.ch.Settings.Config.TombstoneDir, w.loc, s.Config.TombstoneDir, watch)
			}
		}
	}
}

// tombstoneHint says what a wrong --exit-with name probably meant.
func (r *Report) tombstoneHint(spec *PodSpec, n string, names []string) string {
	for i := range r.Lifecycled {
		ch := &r.Lifecycled[i]
		if ch.Container.Name == n && ch.Settings != nil {
			if ch.Settings.Config.TombstoneDir == "" {
				return fmt.Sprintf(" (container %s runs lifecycled without --tombstone-dir)", n)
			}
			return fmt.Sprintf(" (container %s writes tombstone %s: its --name, or its command's base name)", n, ch.Settings.Config.Name)
		}
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if c.Name == n {
			return fmt.Sprintf(" (container %s does not run lifecycled, and only lifecycled writes tombstones)", n)
		}
	}
	if len(names) == 0 {
		return " (no container writes tombstones)"
	}
	slices.Sort(names)
	return fmt.Sprintf(" (tombstones written: %s)", strings.Join(names, ", "))
}
