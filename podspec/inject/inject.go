// Package inject is `lifecycled inject` and `lifecycled uninject`: a
// manifest's app containers put under lifecycled with no image rebuilt,
// and back. An init container copies the binary (`lifecycled install`)
// into an emptyDir the app container mounts read-only; the app's command
// becomes lifecycled's, its probes lifecycled's --ready and --live behind
// /readyz and /livez, its preStop sleep the drain.
//
// It edits the manifest's text, not a re-encoding of it (see source): what
// it does not change keeps its bytes, comments and order. What it changed
// is recorded on the pod template, in the annotation Annotation, so that
// Uninject restores the original exactly and a second Inject leaves the
// workload alone. The workloads are found by podspec.Decode, and the
// result is checked with podspec.Check, as `explain -f` checks it.
package inject

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lifecycled/lifecycled/internal/yamlnode"
	"github.com/lifecycled/lifecycled/podspec"
)

// Annotation is the pod template annotation that marks an injected
// workload and holds what inject changed.
const Annotation = "lifecycled.dev/injected"

// Defaults of Options.
const (
	DefaultImage      = "ghcr.io/lifecycled/lifecycled:v1"
	DefaultPort       = 9901
	DefaultDrainDelay = 5 * time.Second
	DefaultDrainQuiet = time.Second
	// Dir is where the app container sees the binary.
	Dir = "/lifecycled-bin"
)

// ResolveFunc reads an image's ENTRYPOINT and CMD (from its registry),
// for a container whose manifest does not give its command.
type ResolveFunc func(ctx context.Context, container, image string) (entrypoint, cmd []string, err error)

// Options are inject's.
type Options struct {
	// Image is the init container's image, whose /lifecycled is copied.
	Image string
	// Images are images whose ENTRYPOINT is lifecycled (explain -f's
	// --image): a container of one without a command already runs it.
	Images []string
	// Containers are the names of the containers to wrap; all regular
	// containers when empty.
	Containers []string
	// Entrypoints are the commands of containers without one in the
	// manifest, by container name: the image's ENTRYPOINT, followed by its
	// CMD when the manifest has no args.
	Entrypoints map[string][]string
	// Resolve, when set, reads what Entrypoints does not give.
	Resolve ResolveFunc
	// DrainDelay is the drain of a container with a readinessProbe and no
	// preStop sleep (whose length is the drain otherwise).
	DrainDelay time.Duration
	// Adaptive adds --drain-quiet DrainQuiet: the drain ends once the
	// app's ports are quiet, with the delay as its ceiling.
	Adaptive   bool
	DrainQuiet time.Duration
	// GracePeriod is lifecycled's --grace-period; 0: what is left of
	// terminationGracePeriodSeconds after the drain, less 1s.
	GracePeriod time.Duration
	// FixBudget raises terminationGracePeriodSeconds to what the stop
	// sequence needs, instead of a problem.
	FixBudget bool
	// Port is the first port --listen may take.
	Port int
}

// Problems are what inject found wrong with the manifest, or with its
// result, one line each: nothing is written.
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "\n") }

// DecodeError is the error of a file podspec.Decode refuses: not YAML, or
// not the shape of a manifest.
type DecodeError struct{ Err error }

func (e *DecodeError) Error() string { return e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

// record is the annotation's value: how to undo each change, in paths
// from the pod template.
type record struct {
	V     int    `json:"v"`
	Edits []undo `json:"edits"`
}

type undo struct {
	// Path is the mapping keys and sequence indexes from the pod template
	// to the pair or item.
	Path []string `json:"path"`
	// Text is the pair's original text when it was replaced or removed;
	// inject added the pair or item when it is absent.
	Text *string `json:"text,omitempty"`
	// After is, for a removed pair, the key of the pair before it, and
	// Skip the lines between that pair's end and it.
	After string `json:"after,omitempty"`
	Skip  int    `json:"skip,omitempty"`
}

func (o *Options) defaults() {
	if o.Image == "" {
		o.Image = DefaultImage
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.DrainDelay == 0 {
		o.DrainDelay = DefaultDrainDelay
	}
	if o.DrainQuiet == 0 {
		o.DrainQuiet = DefaultDrainQuiet
	}
}

// Inject returns the manifest data with lifecycled put into the chosen
// containers of each workload not injected yet. The error is Problems
// when the manifest or the result has problems (exit 1), any other error
// a manifest inject cannot read or edit (exit 2).
func Inject(ctx context.Context, data []byte, o Options) ([]byte, error) {
	o.defaults()
	data, unterminated := terminate(data)
	ws, err := podspec.Decode(data)
	if err != nil {
		return nil, &DecodeError{err}
	}
	if len(ws) == 0 {
		return nil, errors.New("no Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or PodTemplate in it")
	}
	if err := knownNames(ws, o); err != nil {
		return nil, err
	}
	src := newSource(data)
	var problems Problems
	done := map[int]bool{} // the workloads injected before
	for i := range ws {
		w := &ws[i]
		if w.Template == nil || injected(w.Template) != nil {
			done[i] = true
			continue
		}
		ps, err := injectWorkload(ctx, src, w, o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w, err)
		}
		problems = append(problems, ps...)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	out, err := src.apply()
	if err != nil {
		return nil, err
	}
	if len(out) > yamlnode.MaxBytes {
		return nil, fmt.Errorf("the injected manifest would be larger than %d MiB, more than explain -f and uninject read: inject its workloads in smaller files", yamlnode.MaxBytes>>20)
	}
	if back, err := uninject(out, done); err != nil || !bytes.Equal(back, data) {
		return nil, fmt.Errorf("inject could not edit this manifest so that uninject gives it back byte for byte (a layout it does not handle%s): nothing written", errText(err))
	}
	if err := check(out, o.Images); err != nil {
		return nil, err
	}
	return unterminate(out, unterminated), nil
}

// terminate ends data with a newline, so that what inject adds after
// its last line is whole lines; unterminated says it did.
func terminate(data []byte) ([]byte, bool) {
	if len(data) == 0 || data[len(data)-1] == '\n' {
		return data, false
	}
	return append(slices.Clone(data), '\n'), true
}

// unterminate takes away the newline terminate added.
func unterminate(data []byte, unterminated bool) []byte {
	if unterminated {
		return bytes.TrimSuffix(data, []byte("\n"))
	}
	return data
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

// check runs explain -f's checks on the result.
func check(out []byte, images []string) error {
	ws, err := podspec.Decode(out)
	if err != nil {
		return fmt.Errorf("the injected manifest does not decode: %w", err)
	}
	var problems Problems
	for i := range ws {
		for _, p := range podspec.Check(&ws[i], images).Problems {
			where := ws[i].String()
			if p.Container != "" {
				where += " container " + p.Container
			}
			problems = append(problems, where+": "+p.Text)
		}
	}
	if len(problems) > 0 {
		return problems
	}
	return nil
}

// knownNames refuses a --container or --entrypoint naming no container.
func knownNames(ws []podspec.Workload, o Options) error {
	names := map[string]bool{}
	for _, w := range ws {
		for _, c := range w.Spec.Containers {
			names[c.Name] = true
		}
	}
	for _, n := range o.Containers {
		if !names[n] {
			return fmt.Errorf("--container %s: no container of that name in it (its containers: %s)", n, sortedKeys(names))
		}
	}
	for n := range o.Entrypoints {
		if !names[n] {
			return fmt.Errorf("--entrypoint %s: no container of that name in it (its containers: %s)", n, sortedKeys(names))
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	if len(ks) == 0 {
		return "none"
	}
	return strings.Join(ks, ", ")
}

// injected is the record of an injected template, nil if it is not.
func injected(tmpl *yaml.Node) *yaml.Node {
	return podspec.MappingValue(podspec.MappingValue(podspec.MappingValue(tmpl, "metadata"), "annotations"), Annotation)
}

// workload is one workload being injected.
type workload struct {
	src  *source
	w    *podspec.Workload
	rec  record
	o    Options
	spec *yaml.Node
}

func injectWorkload(ctx context.Context, src *source, w *podspec.Workload, o Options) (Problems, error) {
	wl := &workload{src: src, w: w, o: o, rec: record{V: 1}}
	wl.spec = podspec.MappingValue(w.Template, "spec")
	seq := podspec.MappingValue(wl.spec, "containers")
	if wl.spec == nil || seq == nil || seq.Kind != yaml.SequenceNode || len(seq.Content) != len(w.Spec.Containers) {
		return nil, nil
	}
	var chosen []int
	for i := range w.Spec.Containers {
		c := &w.Spec.Containers[i]
		if len(o.Containers) > 0 && !slices.Contains(o.Containers, c.Name) {
			continue
		}
		if _, runs := c.Lifecycled(o.Images); runs {
			continue // already under lifecycled
		}
		chosen = append(chosen, i)
	}
	if len(chosen) == 0 {
		return nil, nil
	}
	// New sequences are written as the containers' is: at its key's
	// indentation (kubectl's way) or under it.
	if dash := seq.Content[0]; seq.Style&yaml.FlowStyle == 0 {
		k := wl.spec.Content[keyIndex(wl.spec, "containers")]
		_, _, col, err := src.item(seq, 0)
		src.compact = err == nil && col == k.Column && dash.Line > k.Line
	}
	vol := freeName("lifecycled-bin", volumeNames(w))
	initName := freeName("lifecycled-install", containerNames(w))
	dir := freeDir(w)
	ports := usedPorts(w, o.Images)
	tgp := w.Spec.TerminationGracePeriod()
	need := tgp
	var problems Problems
	for _, i := range chosen {
		c := &w.Spec.Containers[i]
		port := o.Port
		for ports[port] {
			port++
		}
		ports[port] = true
		total, ps, err := wl.container(ctx, i, c, seq.Content[i], vol, dir, port, tgp)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.Name, err)
		}
		for _, p := range ps {
			problems = append(problems, fmt.Sprintf("%s container %s: %s", w, c.Name, p))
		}
		need = max(need, total)
	}
	if need > tgp {
		secs := int64((need + time.Second - 1) / time.Second)
		if !o.FixBudget {
			problems = append(problems, fmt.Sprintf("%s: terminationGracePeriodSeconds %d is shorter than the injected stop sequence (drain and --grace-period: %s): give --fix-budget to raise it to %d, or a shorter --drain-delay or --grace-period",
				w, int64(tgp/time.Second), need, secs))
		} else if err := wl.setPair(wl.spec, []string{"spec"}, "terminationGracePeriodSeconds", node(secs)); err != nil {
			return nil, err
		}
	}
	if len(problems) > 0 {
		return problems, nil
	}
	if err := wl.addItem(wl.spec, []string{"spec"}, "volumes", mapping("name", vol, "emptyDir", mapping())); err != nil {
		return nil, err
	}
	if err := wl.addItem(wl.spec, []string{"spec"}, "initContainers", wl.initContainer(initName, vol, dir, chosen)); err != nil {
		return nil, err
	}
	return nil, wl.annotate()
}

// container wraps container i; it returns the time its stop sequence
// takes at most.
func (wl *workload) container(ctx context.Context, i int, c *podspec.Container, cn *yaml.Node, vol, dir string, port int, tgp time.Duration) (time.Duration, []string, error) {
	if cn.Kind != yaml.MappingNode || cn.Style&yaml.FlowStyle != 0 {
		return 0, nil, layoutError(cn, "a container that is not a block mapping")
	}
	path := []string{"spec", "containers", strconv.Itoa(i)}
	var problems []string
	argv, err := wl.command(ctx, c)
	if err != nil {
		return 0, []string{err.Error()}, nil
	}
	// lifecycled serves /readyz and /livez when the app has a readiness
	// probe to move behind them. Without one, nothing would ask /readyz
	// (explain -f calls that a problem: traffic before the app is ready),
	// and a liveness probe stays on the app, where it works as it did.
	var flags []string
	if c.ReadinessProbe != nil {
		flags = append(flags, "--listen", ":"+strconv.Itoa(port))
	}
	msg := c.TerminationMessagePath
	if msg == "" {
		msg = "/dev/termination-log"
	}
	flags = append(flags, "--termination-log", msg, "--termination-grace-period", strconv.FormatInt(int64(tgp/time.Second), 10)+"s")

	// The kubelet's preStop sleep becomes the drain, which fails /readyz
	// first; without one, a serving container gets the default drain.
	var drain time.Duration
	lifecycleIdx := keyIndex(cn, "lifecycle")
	if d, has, sleeps := c.PreStopSleep(); has {
		if !sleeps {
			problems = append(problems, "its preStop hook is not a sleep: the kubelet would run it before lifecycled's drain; move it into lifecycled's own --pre-stop or --pre-stop-http, or remove it, then inject")
		}
		drain = d
	} else if c.ReadinessProbe != nil {
		drain = wl.o.DrainDelay
	}
	if drain > 0 {
		flags = append(flags, "--drain-delay", seconds(drain))
		if wl.o.Adaptive && drain > wl.o.DrainQuiet {
			flags = append(flags, "--drain-quiet", seconds(wl.o.DrainQuiet))
			for _, p := range c.Ports {
				flags = append(flags, "--drain-watch", strconv.Itoa(p.ContainerPort))
			}
		}
	}
	grace := wl.o.GracePeriod
	if grace == 0 {
		// The app keeps the time it had, less 1s in which lifecycled
		// kills what is left and writes the termination message; at
		// least the kubelet's own 2s.
		grace = max(tgp-drain-time.Second, 2*time.Second)
	}
	flags = append(flags, "--grace-period", seconds(grace))

	probes := []struct{ key, prefix, path string }{{"readinessProbe", "ready", "/readyz"}, {"livenessProbe", "live", "/livez"}}
	type rewired struct {
		key string
		v   *yaml.Node
	}
	var rewire []rewired
	for _, p := range probes {
		n := podspec.MappingValue(cn, p.key)
		if n == nil || c.ReadinessProbe == nil {
			continue
		}
		pf, err := probeFlags(c, n, p.prefix)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v: inject cannot move it behind lifecycled", p.key, err))
			continue
		}
		flags = append(flags, pf...)
		rewire = append(rewire, rewired{p.key, endpointProbe(n, p.path, port)})
	}
	if len(problems) > 0 {
		return 0, problems, nil
	}
	for i := range flags {
		flags[i] = strings.ReplaceAll(flags[i], "$", "$$") // the kubelet expands $(VAR) in command
	}
	command := append([]string{dir + "/lifecycled"}, flags...)
	command = append(command, "--")
	command = append(command, argv...)
	if err := wl.setPair(cn, path, "command", node(command)); err != nil {
		return 0, nil, err
	}
	for _, r := range rewire {
		if err := wl.setPair(cn, path, r.key, r.v); err != nil {
			return 0, nil, err
		}
	}
	if lifecycleIdx >= 0 && c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		rest := mapping()
		rest.Style = yaml.FlowStyle // {} when preStop was all of it
		if l := cn.Content[lifecycleIdx+1]; l.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(l.Content); j += 2 {
				if l.Content[j].Value != "preStop" {
					rest.Content = append(rest.Content, l.Content[j], l.Content[j+1])
				}
			}
		}
		if len(rest.Content) > 0 {
			rest.Style = 0
		}
		if err := wl.dropPreStop(cn, path, lifecycleIdx, rest); err != nil {
			return 0, nil, err
		}
	}
	mount := mapping("name", vol, "mountPath", dir, "readOnly", true)
	if err := wl.addItem(cn, path, "volumeMounts", mount); err != nil {
		return 0, nil, err
	}
	return drain + grace, nil, nil
}

// dropPreStop takes the kubelet's preStop out of the container's
// lifecycle: the lifecycle goes when that was all of it, else it is
// written again without it ({} where the lifecycle cannot go: the first
// key of its container).
func (wl *workload) dropPreStop(cn *yaml.Node, path []string, i int, rest *yaml.Node) error {
	if len(rest.Content) == 0 && i >= 2 {
		after := cn.Content[i-2].Value
		if text, skip, err := wl.src.cutPair(cn, i); err == nil {
			wl.rec.Edits = append(wl.rec.Edits, undo{Path: append(slices.Clone(path), "lifecycle"), Text: &text, After: after, Skip: skip})
			return nil
		}
	}
	return wl.setPair(cn, path, "lifecycle", rest)
}

// command is the container's original command: the manifest's, else
// --entrypoint's, else the image's from Resolve. The manifest's args stay
// where they are: the kubelet appends them to the command, and expands
// $(VAR) in both.
func (wl *workload) command(ctx context.Context, c *podspec.Container) ([]string, error) {
	if len(c.Command) > 0 {
		return c.Command, nil
	}
	escape := func(argv []string) []string {
		out := make([]string, len(argv))
		for i, a := range argv {
			out[i] = strings.ReplaceAll(a, "$", "$$") // the image's, which the kubelet never expanded
		}
		return out
	}
	if e, ok := wl.o.Entrypoints[c.Name]; ok {
		return escape(e), nil
	}
	if wl.o.Resolve != nil {
		ep, cmd, err := wl.o.Resolve(ctx, c.Name, c.Image)
		if err != nil {
			return nil, fmt.Errorf("image %s: %v", c.Image, err)
		}
		argv := ep
		if len(c.Args) == 0 {
			argv = append(slices.Clone(ep), cmd...)
		}
		if len(argv) == 0 && len(c.Args) == 0 {
			return nil, fmt.Errorf("image %s has neither ENTRYPOINT nor CMD, and the manifest no command or args", c.Image)
		}
		return escape(argv), nil
	}
	return nil, fmt.Errorf("no command in the manifest, and the image's ENTRYPOINT is not known: give --entrypoint %s='[\"/app\",\"--flag\"]' (the image's ENTRYPOINT, then its CMD if the manifest has no args) or --resolve (read it from the image's registry)", c.Name)
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// initContainer copies the binary into the volume. Its securityContext is
// the restricted Pod Security Standard's whatever the pod's: it needs no
// privilege, runs as the app's user when the app names one (else 65532,
// the image's), on a read-only root.
func (wl *workload) initContainer(name, vol, dir string, chosen []int) *yaml.Node {
	sc := mapping(
		"allowPrivilegeEscalation", false,
		"readOnlyRootFilesystem", true,
		"runAsNonRoot", true,
	)
	if uid := wl.runAsUser(chosen); uid != nil {
		sc.Content = append(sc.Content, str("runAsUser"), uid)
	}
	sc.Content = append(sc.Content,
		str("capabilities"), mapping("drop", []string{"ALL"}),
		str("seccompProfile"), mapping("type", "RuntimeDefault"))
	return mapping(
		"name", name,
		"image", wl.o.Image,
		"command", []string{"/lifecycled", "install", dir},
		"volumeMounts", &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{mapping("name", vol, "mountPath", dir)}},
		"securityContext", sc,
		"resources", mapping("requests", mapping("cpu", "10m", "memory", "32Mi"), "limits", mapping("memory", "128Mi")),
	)
}

// runAsUser is the user the first chosen container or the pod runs as,
// when the manifest says, else nil (the image's own: 65532).
func (wl *workload) runAsUser(chosen []int) *yaml.Node {
	seq := podspec.MappingValue(wl.spec, "containers")
	for _, i := range chosen {
		if u := podspec.MappingValue(podspec.MappingValue(seq.Content[i], "securityContext"), "runAsUser"); u != nil && u.Value != "0" {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: u.Value}
		}
	}
	if u := podspec.MappingValue(podspec.MappingValue(wl.spec, "securityContext"), "runAsUser"); u != nil && u.Value == "0" {
		// The pod's root would apply to the init container, and
		// runAsNonRoot refuse it.
		return node(65532)
	}
	return nil
}
