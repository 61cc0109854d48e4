package integration

// Static checks of examples/: every manifest decodes strictly into the
// official Kubernetes types, every lifecycled command line in it is one the
// built binary accepts, the probes point at what lifecycled serves, and the
// stop sequence fits terminationGracePeriodSeconds. podman_test.go runs the
// podman twins for real.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// exampleImages are the images the manifests may use: the ones the
// Dockerfiles of this repository build (examples/README.md). Their
// ENTRYPOINT is /lifecycled.
var exampleImages = []string{
	"localhost/lifecycled:dev",
	"localhost/lifecycled-demo:dev",
	"localhost/lifecycled-demo:noshell",
}

// example is one decoded manifest file.
type example struct {
	path string // relative to the repository root
	docs []any  // *corev1.Pod, *corev1.Service, *appsv1.Deployment, *batchv1.Job
}

// workload is a pod spec found in an example, with where it came from.
type workload struct {
	file, kind, name string
	spec             *corev1.PodSpec
}

func (w workload) String() string { return fmt.Sprintf("%s: %s %s", w.file, w.kind, w.name) }

// exampleFiles lists examples/*.yaml (Kubernetes) and examples/podman/*.yaml
// (their podman twins), relative to the repository root.
func exampleFiles(t *testing.T) (kube, podman []string) {
	t.Helper()
	root := repoRoot(t)
	for _, dir := range []struct {
		glob string
		into *[]string
	}{{"examples/*.yaml", &kube}, {"examples/podman/*.yaml", &podman}} {
		m, err := filepath.Glob(filepath.Join(root, dir.glob))
		require.NoError(t, err)
		for _, p := range m {
			rel, err := filepath.Rel(root, p)
			require.NoError(t, err)
			*dir.into = append(*dir.into, rel)
		}
	}
	require.NotEmpty(t, kube, "no examples/*.yaml")
	require.NotEmpty(t, podman, "no examples/podman/*.yaml")
	return kube, podman
}

// repoRoot is the module's root directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	require.NoError(t, err)
	return root
}

// splitYAML splits a multi-document YAML file; documents holding only
// comments or blanks are dropped.
func splitYAML(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
		empty := true
		for _, l := range strings.Split(d, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// decodeStrict decodes one document into the official type for its kind.
// Unknown and duplicate fields are errors, as `kubectl apply
// --validate=strict` makes them.
func decodeStrict(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.APIVersion + "/" + tm.Kind {
	case "v1/Pod":
		obj = &corev1.Pod{}
	case "v1/Service":
		obj = &corev1.Service{}
	case "apps/v1/Deployment":
		obj = &appsv1.Deployment{}
	case "batch/v1/Job":
		obj = &batchv1.Job{}
	default:
		return nil, fmt.Errorf("unexpected apiVersion/kind %q/%q", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// loadExample reads and strictly decodes path (relative to the root).
func loadExample(t *testing.T, path string) example {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), path))
	require.NoError(t, err)
	ex := example{path: path}
	for i, doc := range splitYAML(b) {
		obj, err := decodeStrict(doc)
		require.NoError(t, err, "%s: document %d", path, i+1)
		ex.docs = append(ex.docs, obj)
	}
	require.NotEmpty(t, ex.docs, "%s: no document", path)
	return ex
}

// workloads returns the pod specs of the example's Pods, Deployments and Jobs.
func (ex example) workloads() []workload {
	var out []workload
	for _, d := range ex.docs {
		switch o := d.(type) {
		case *corev1.Pod:
			out = append(out, workload{ex.path, "Pod", o.Name, &o.Spec})
		case *appsv1.Deployment:
			out = append(out, workload{ex.path, "Deployment", o.Name, &o.Spec.Template.Spec})
		case *batchv1.Job:
			out = append(out, workload{ex.path, "Job", o.Name, &o.Spec.Template.Spec})
		}
	}
	return out
}

func TestExamplesDecodeStrictly(t *testing.T) {
	kube, podman := exampleFiles(t)
	for _, path := range append(kube, podman...) {
		t.Run(path, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(repoRoot(t), path))
			require.NoError(t, err)
			assert.True(t, bytes.HasPrefix(b, []byte("# ")),
				"%s must open with comments saying what it demonstrates and what you will see", path)
			ex := loadExample(t, path)
			ws := ex.workloads()
			require.NotEmpty(t, ws, "%s: no Pod, Deployment or Job", path)
			for _, d := range ex.docs {
				checkObject(t, path, d)
			}
			for _, w := range ws {
				checkPodSpec(t, w)
			}
		})
	}
}

// checkObject checks what the API server would reject in a Deployment or a
// Job beyond the schema.
func checkObject(t *testing.T, path string, obj any) {
	t.Helper()
	switch o := obj.(type) {
	case *appsv1.Deployment:
		require.NotNil(t, o.Spec.Selector, "%s: Deployment %s has no selector", path, o.Name)
		for k, v := range o.Spec.Selector.MatchLabels {
			assert.Equal(t, v, o.Spec.Template.Labels[k], "%s: Deployment %s: selector %s does not match the template", path, o.Name, k)
		}
		rp := o.Spec.Template.Spec.RestartPolicy
		assert.Contains(t, []corev1.RestartPolicy{"", corev1.RestartPolicyAlways}, rp,
			"%s: a Deployment's pods must have restartPolicy Always", path)
	case *batchv1.Job:
		assert.Contains(t, []corev1.RestartPolicy{corev1.RestartPolicyNever, corev1.RestartPolicyOnFailure},
			o.Spec.Template.Spec.RestartPolicy, "%s: a Job's pods must have restartPolicy Never or OnFailure", path)
	}
}

// checkPodSpec checks a pod spec's internal references: images, names,
// volumes, probe ports.
func checkPodSpec(t *testing.T, w workload) {
	t.Helper()
	volumes := map[string]bool{}
	for _, v := range w.spec.Volumes {
		volumes[v.Name] = true
	}
	names := map[string]bool{}
	for _, c := range allContainers(w.spec) {
		assert.False(t, names[c.Name], "%s: container name %q twice", w, c.Name)
		names[c.Name] = true
		assert.Contains(t, exampleImages, c.Image, "%s: container %s: image not built by this repository", w, c.Name)
		for _, m := range c.VolumeMounts {
			assert.True(t, volumes[m.Name], "%s: container %s mounts undefined volume %q", w, c.Name, m.Name)
		}
		for kind, p := range containerProbes(c) {
			if p.HTTPGet != nil {
				_, err := probePort(c, p.HTTPGet.Port)
				assert.NoError(t, err, "%s: container %s: %s", w, c.Name, kind)
			}
		}
	}
}

// allContainers is the pod's init containers, then its containers.
func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	var out []*corev1.Container
	for i := range spec.InitContainers {
		out = append(out, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		out = append(out, &spec.Containers[i])
	}
	return out
}

// isSidecar reports whether c is a native sidecar of spec.
func isSidecar(spec *corev1.PodSpec, c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways &&
		slices.ContainsFunc(spec.InitContainers, func(ic corev1.Container) bool { return ic.Name == c.Name })
}

// containerProbes are the container's probes by kind.
func containerProbes(c *corev1.Container) map[string]*corev1.Probe {
	out := map[string]*corev1.Probe{}
	for kind, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe, "startupProbe": c.StartupProbe} {
		if p != nil {
			out[kind] = p
		}
	}
	return out
}

// probeEndpoint is the lifecycled endpoint each kind of probe must use.
var probeEndpoint = map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/livez", "startupProbe": "/startupz"}

// probePort resolves a probe's port, named or numbered.
func probePort(c *corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("probe port %q is not a port of the container", port.StrVal)
}

// lifecycledArgv returns the arguments lifecycled runs with in c (after
// the program name), and false if c does not run lifecycled. The example
// images' ENTRYPOINT is /lifecycled, so with no `command:` the args are
// lifecycled's.
func lifecycledArgv(c *corev1.Container) ([]string, bool) {
	if len(c.Command) > 0 {
		if filepath.Base(c.Command[0]) != "lifecycled" {
			return nil, false
		}
		return append(slices.Clone(c.Command[1:]), c.Args...), true
	}
	if slices.Contains(exampleImages, c.Image) {
		return slices.Clone(c.Args), true
	}
	return nil, false
}

// helpFlags runs `lifecycled [SUBCOMMAND] --help` and returns the flags it
// lists, each with whether it takes a value.
func helpFlags(t *testing.T, sub ...string) map[string]bool {
	t.Helper()
	out, err := exec.Command(lifecycledBin(t), append(sub, "--help")...).Output()
	require.NoError(t, err, "lifecycled %v --help", sub)
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^ +--?([a-z0-9-]+)( [^ ]+)?[ \t]*$`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = m[2] != ""
	}
	require.NotEmpty(t, flags, "no flags found in lifecycled %v --help:\n%s", sub, out)
	return flags
}

// runFlags is the part of a `lifecycled run` command line the checks use.
type runFlags struct {
	values  map[string][]string // every flag given, by name, in order
	command []string            // after --
}

func (f runFlags) last(name string) string {
	v := f.values[name]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func (f runFlags) duration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	s := f.last(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, err2 := strconv.ParseFloat(s, 64)
		require.NoError(t, err2, "--%s %q", name, s)
		d = time.Duration(secs * float64(time.Second))
	}
	return d
}

// parseFlags splits args into flags (checked against known, the flags the
// binary's --help lists) and the rest after `--` or the first non-flag.
func parseFlags(known map[string]bool, args []string) (runFlags, error) {
	f := runFlags{values: map[string][]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			f.command = args[i+1:]
			return f, nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			f.command = args[i:]
			return f, nil
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue, ok := known[name]
		if !ok {
			return f, fmt.Errorf("unknown flag %s (not in lifecycled --help)", a)
		}
		if takesValue && !hasValue {
			if i+1 >= len(args) {
				return f, fmt.Errorf("flag %s needs a value", a)
			}
			i++
			value = args[i]
		}
		f.values[name] = append(f.values[name], value)
	}
	return f, nil
}

// lifecycledContainer is a container that runs `lifecycled run`.
type lifecycledContainer struct {
	c     *corev1.Container
	flags runFlags
	argv  []string
}

// name is lifecycled's --name: the tombstone and hook log name.
func (lc lifecycledContainer) name() string {
	if n := lc.flags.last("name"); n != "" {
		return n
	}
	if len(lc.flags.command) == 0 {
		return ""
	}
	return filepath.Base(lc.flags.command[0])
}

// stopBudget is the longest the stop sequence can take (contract section 5,
// steps 2-6).
func (lc lifecycledContainer) stopBudget(t *testing.T) time.Duration {
	b := lc.flags.duration(t, "drain-delay", 0) + lc.flags.duration(t, "grace-period", 10*time.Second)
	if lc.flags.last("drain-connections") != "" {
		b += lc.flags.duration(t, "drain-timeout", 30*time.Second)
	}
	if lc.flags.last("pre-stop") != "" || lc.flags.last("pre-stop-http") != "" {
		b += lc.flags.duration(t, "hook-timeout", 30*time.Second)
	}
	b += lc.flags.duration(t, "pre-stop-sleep", 0)
	return b
}

// lifecycledSubcommands are those of lifecycled other than run.
var lifecycledSubcommands = []string{"wait", "probe", "sleep", "explain", "version"}

func TestExamplesLifecycledArgs(t *testing.T) {
	runKnown := helpFlags(t)
	subKnown := map[string]map[string]bool{"wait": helpFlags(t, "wait"), "probe": helpFlags(t, "probe")}
	kube, podman := exampleFiles(t)
	for _, path := range append(kube, podman...) {
		t.Run(path, func(t *testing.T) {
			for _, w := range loadExample(t, path).workloads() {
				checkLifecycledWorkload(t, w, runKnown, subKnown)
			}
		})
	}
}

func checkLifecycledWorkload(t *testing.T, w workload, runKnown map[string]bool, subKnown map[string]map[string]bool) {
	tgps := 30 * time.Second // the Kubernetes default
	if w.spec.TerminationGracePeriodSeconds != nil {
		tgps = time.Duration(*w.spec.TerminationGracePeriodSeconds) * time.Second
	}
	var runs []lifecycledContainer
	for _, c := range allContainers(w.spec) {
		// Exec probes that run lifecycled (`lifecycled probe ...`).
		for kind, p := range containerProbes(c) {
			if p.Exec == nil || len(p.Exec.Command) == 0 || filepath.Base(p.Exec.Command[0]) != "lifecycled" {
				continue
			}
			checkSubcommand(t, w, c.Name+" "+kind, p.Exec.Command[1:], subKnown)
		}

		argv, ok := lifecycledArgv(c)
		if !ok {
			continue
		}
		require.NotEmpty(t, argv, "%s: container %s: give lifecycled's arguments explicitly (args:)", w, c.Name)
		if slices.Contains(lifecycledSubcommands, argv[0]) {
			checkSubcommand(t, w, c.Name, argv, subKnown)
			continue
		}
		if argv[0] == "run" {
			argv = argv[1:]
		}
		flags, err := parseFlags(runKnown, argv)
		require.NoError(t, err, "%s: container %s: %q", w, c.Name, argv)
		require.NotEmpty(t, flags.command, "%s: container %s: no COMMAND after --", w, c.Name)
		lc := lifecycledContainer{c: c, flags: flags, argv: argv}
		runs = append(runs, lc)

		// The binary itself accepts the command line and the budget fits:
		// `explain` parses and validates everything `run` does, starts
		// nothing, and exits 1 when the stop sequence cannot fit.
		args := argv
		if flags.last("termination-grace-period") == "" {
			args = append([]string{"--termination-grace-period", tgps.String()}, argv...)
		} else {
			assert.Equal(t, tgps, flags.duration(t, "termination-grace-period", 0),
				"%s: container %s: --termination-grace-period differs from terminationGracePeriodSeconds", w, c.Name)
		}
		cmd := exec.Command(lifecycledBin(t), append([]string{"explain"}, args...)...)
		cmd.Env = testEnv(containerEnv(c))
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s: container %s: lifecycled explain %q:\n%s", w, c.Name, args, out)

		checkHealthProbes(t, w, lc)
	}
	checkBudget(t, w, tgps, runs)
	checkExitWith(t, w, runs)
}

// containerEnv is the container's LIFECYCLED_* environment, which lifecycled
// reads as flags.
func containerEnv(c *corev1.Container) []string {
	var env []string
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "LIFECYCLED_") {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	return env
}

// checkSubcommand checks `lifecycled wait|probe|sleep ...`: known flags, and
// targets the binary accepts (checked by `explain --wait TARGET`, which
// parses a target as wait and probe do, without connecting).
func checkSubcommand(t *testing.T, w workload, where string, argv []string, subKnown map[string]map[string]bool) {
	t.Helper()
	sub := argv[0]
	switch sub {
	case "wait", "probe":
		flags, err := parseFlags(subKnown[sub], argv[1:])
		require.NoError(t, err, "%s: %s: %q", w, where, argv)
		require.NotEmpty(t, flags.command, "%s: %s: %s without a TARGET", w, where, sub)
		if sub == "probe" {
			assert.Len(t, flags.command, 1, "%s: %s: probe takes one TARGET", w, where)
		}
		if sub == "wait" {
			assert.NotEmpty(t, flags.last("timeout"), "%s: %s: an init container's wait should have a --timeout", w, where)
		}
		args := []string{"explain"}
		for _, target := range flags.command {
			args = append(args, "--wait", target)
		}
		out, err := exec.Command(lifecycledBin(t), args...).CombinedOutput()
		assert.NoError(t, err, "%s: %s: targets %q:\n%s", w, where, flags.command, out)
	case "sleep":
		assert.Len(t, argv, 2, "%s: %s: sleep takes one DURATION", w, where)
	}
}

// checkHealthProbes checks that the kubelet's HTTP probes of a lifecycled
// container go to lifecycled's --listen port and to the endpoint of their
// kind, and that the port is declared when the container declares ports.
func checkHealthProbes(t *testing.T, w workload, lc lifecycledContainer) {
	t.Helper()
	listen := lc.flags.last("listen")
	listenPort := 0
	if listen != "" {
		_, p, err := net.SplitHostPort(listen)
		require.NoError(t, err, "%s: container %s: --listen %q", w, lc.c.Name, listen)
		listenPort, err = strconv.Atoi(p)
		require.NoError(t, err, "%s: container %s: --listen %q", w, lc.c.Name, listen)
		if len(lc.c.Ports) > 0 {
			assert.True(t, slices.ContainsFunc(lc.c.Ports, func(p corev1.ContainerPort) bool { return int(p.ContainerPort) == listenPort }),
				"%s: container %s: --listen port %d is not among its ports", w, lc.c.Name, listenPort)
		}
	}
	for kind, p := range containerProbes(lc.c) {
		if p.HTTPGet == nil {
			continue
		}
		require.NotEmpty(t, listen, "%s: container %s: %s is an httpGet probe but lifecycled has no --listen", w, lc.c.Name, kind)
		port, err := probePort(lc.c, p.HTTPGet.Port)
		require.NoError(t, err)
		assert.Equal(t, listenPort, port, "%s: container %s: %s goes to port %d, lifecycled listens on %d", w, lc.c.Name, kind, port, listenPort)
		assert.Equal(t, probeEndpoint[kind], p.HTTPGet.Path, "%s: container %s: %s path", w, lc.c.Name, kind)
	}
}

// checkBudget checks terminationGracePeriodSeconds against the stop
// sequences: the app containers stop together, native sidecars after them.
func checkBudget(t *testing.T, w workload, tgps time.Duration, runs []lifecycledContainer) {
	t.Helper()
	var apps, sidecars time.Duration
	for _, lc := range runs {
		b := lc.stopBudget(t)
		if isSidecar(w.spec, lc.c) {
			sidecars = max(sidecars, b)
		} else {
			apps = max(apps, b)
		}
	}
	assert.LessOrEqual(t, apps+sidecars, tgps,
		"%s: terminationGracePeriodSeconds %s < the stop sequences (drain-delay + grace-period + ...): %s for the containers, then %s for native sidecars",
		w, tgps, apps, sidecars)
}

// checkExitWith checks that every --exit-with NAME names a lifecycled of the
// same pod that writes its tombstone where the watcher looks: the same
// volume, mounted at the --tombstone-dir of both.
func checkExitWith(t *testing.T, w workload, runs []lifecycledContainer) {
	t.Helper()
	for _, watcher := range runs {
		for _, name := range watcher.flags.values["exit-with"] {
			dir := watcher.flags.last("tombstone-dir")
			require.NotEmpty(t, dir, "%s: container %s: --exit-with needs --tombstone-dir", w, watcher.c.Name)
			i := slices.IndexFunc(runs, func(lc lifecycledContainer) bool { return lc.name() == name && lc.c != watcher.c })
			require.GreaterOrEqual(t, i, 0, "%s: container %s: --exit-with %s: no other lifecycled of the pod is named %s", w, watcher.c.Name, name, name)
			watched := runs[i]
			assert.Equal(t, dir, watched.flags.last("tombstone-dir"), "%s: %s and %s: --tombstone-dir differs", w, watcher.c.Name, watched.c.Name)
			v1, v2 := mountedVolume(watcher.c, dir), mountedVolume(watched.c, dir)
			assert.NotEmpty(t, v1, "%s: container %s: %s is on no volume", w, watcher.c.Name, dir)
			assert.Equal(t, v1, v2, "%s: %s and %s do not share the volume at %s", w, watcher.c.Name, watched.c.Name, dir)
		}
	}
}

// mountedVolume is the volume mounted at path in c, or "".
func mountedVolume(c *corev1.Container, path string) string {
	for _, m := range c.VolumeMounts {
		if filepath.Clean(m.MountPath) == filepath.Clean(path) {
			return m.Name
		}
	}
	return ""
}

// TestExamplesPodmanTwins checks the rule of examples/podman/: every
// Kubernetes manifest has a twin there that podman 4.3's `kube play` can
// run, and podman_test.go runs every twin.
func TestExamplesPodmanTwins(t *testing.T) {
	kube, podman := exampleFiles(t)
	for _, k := range kube {
		twin := filepath.Join("examples", "podman", filepath.Base(k))
		assert.Contains(t, podman, twin, "%s has no podman twin", k)
	}
	for _, path := range podman {
		t.Run(path, func(t *testing.T) {
			base := filepath.Base(path)
			assert.Contains(t, kube, filepath.Join("examples", base), "%s is the twin of no Kubernetes manifest", path)
			_, played := kubePlayScenarios[base]
			assert.True(t, played, "%s: no scenario in podman_test.go runs it", path)

			b, err := os.ReadFile(filepath.Join(repoRoot(t), path))
			require.NoError(t, err)
			assert.Contains(t, string(b), "twin of ../"+base, "%s must say which manifest it is the twin of", path)

			for _, d := range loadExample(t, path).docs {
				switch d.(type) {
				case *corev1.Pod, *appsv1.Deployment:
				default:
					t.Errorf("%s: podman 4.3's kube play runs Pods and Deployments only, not %T", path, d)
				}
			}
			for _, w := range loadExample(t, path).workloads() {
				if len(w.spec.InitContainers) > 0 {
					assert.NotContains(t, []corev1.RestartPolicy{"", corev1.RestartPolicyAlways}, w.spec.RestartPolicy,
						"%s: podman 4.3 restarts init containers forever under restartPolicy Always", w)
				}
				for _, c := range allContainers(w.spec) {
					assert.Empty(t, c.Ports, "%s: container %s: podman 4.3 publishes containerPorts on the host (and refuses to with --network none)", w, c.Name)
					assert.False(t, isSidecar(w.spec, c), "%s: container %s: podman 4.3 runs native sidecars as plain init containers and waits for them forever", w, c.Name)
				}
			}
		})
	}
}
