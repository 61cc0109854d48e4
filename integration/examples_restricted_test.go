package integration

// Pod Security "restricted" for examples/, and `lifecycled explain` on the
// README's configuration example. The rules are read from the fields, as
// the Pod Security admission controller's restricted profile (latest)
// states them, rather than through k8s.io/pod-security-admission, which
// would pull a large dependency tree into the tests for a dozen checks.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// restrictedExceptions are the podman twins' departures from the
// restricted profile, each said in the twin's opening comment: podman
// accepts the rest.
var restrictedExceptions = map[string][]string{
	// No cluster network under podman: the twin's pods share the host's
	// loopback, which baseline forbids.
	"examples/podman/init-container-wait.yaml": {"hostNetwork"},
}

// restrictedViolations lists what Pod Security's "restricted" profile
// (which includes "baseline") rejects in spec.
func restrictedViolations(spec *corev1.PodSpec) []string {
	var v []string
	add := func(format string, a ...any) { v = append(v, fmt.Sprintf(format, a...)) }

	// baseline
	if spec.HostNetwork {
		add("hostNetwork")
	}
	if spec.HostPID || spec.HostIPC {
		add("hostPID/hostIPC")
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	for _, s := range psc.Sysctls {
		add("sysctl %s", s.Name)
	}
	// restricted: volume types
	for _, vol := range spec.Volumes {
		vs := vol.VolumeSource
		if vs.ConfigMap == nil && vs.CSI == nil && vs.DownwardAPI == nil && vs.EmptyDir == nil && vs.Ephemeral == nil &&
			vs.PersistentVolumeClaim == nil && vs.Projected == nil && vs.Secret == nil {
			add("volume %s: type not allowed", vol.Name)
		}
	}
	podSeccomp := psc.SeccompProfile != nil
	if podSeccomp && !allowedSeccomp(psc.SeccompProfile) {
		add("pod seccompProfile %s", psc.SeccompProfile.Type)
	}
	podNonRoot := psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	if psc.RunAsNonRoot != nil && !*psc.RunAsNonRoot {
		add("pod runAsNonRoot false")
	}
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		add("pod runAsUser 0")
	}
	for _, c := range allContainers(spec) {
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if sc.Privileged != nil && *sc.Privileged {
			add("container %s: privileged", c.Name)
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				add("container %s: hostPort %d", c.Name, p.HostPort)
			}
		}
		if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
			add("container %s: procMount %s", c.Name, *sc.ProcMount)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			add("container %s: allowPrivilegeEscalation must be false", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			add("container %s: capabilities must drop ALL", c.Name)
		}
		if sc.Capabilities != nil {
			for _, cap := range sc.Capabilities.Add {
				if cap != "NET_BIND_SERVICE" {
					add("container %s: adds capability %s", c.Name, cap)
				}
			}
		}
		switch {
		case sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot:
			add("container %s: runAsNonRoot false", c.Name)
		case sc.RunAsNonRoot == nil && !podNonRoot:
			add("container %s: runAsNonRoot must be true (container or pod)", c.Name)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			add("container %s: runAsUser 0", c.Name)
		}
		switch {
		case sc.SeccompProfile != nil && !allowedSeccomp(sc.SeccompProfile):
			add("container %s: seccompProfile %s", c.Name, sc.SeccompProfile.Type)
		case sc.SeccompProfile == nil && !podSeccomp:
			add("container %s: seccompProfile must be RuntimeDefault or Localhost (container or pod)", c.Name)
		}
	}
	return v
}

func allowedSeccomp(p *corev1.SeccompProfile) bool {
	return p.Type == corev1.SeccompProfileTypeRuntimeDefault || p.Type == corev1.SeccompProfileTypeLocalhost
}

// resourceViolations: every container requests CPU and memory and limits
// memory (the scheduler places it, the OOM killer cannot take its
// neighbours' memory). No CPU limit is required: throttling would stretch
// the drain and the stop sequence past their budget.
func resourceViolations(spec *corev1.PodSpec) []string {
	var v []string
	for _, c := range allContainers(spec) {
		r := c.Resources
		for _, want := range []struct {
			list corev1.ResourceList
			name corev1.ResourceName
			what string
		}{
			{r.Requests, corev1.ResourceCPU, "requests.cpu"},
			{r.Requests, corev1.ResourceMemory, "requests.memory"},
			{r.Limits, corev1.ResourceMemory, "limits.memory"},
		} {
			if _, ok := want.list[want.name]; !ok {
				v = append(v, fmt.Sprintf("container %s: no resources.%s", c.Name, want.what))
			}
		}
	}
	return v
}

// TestExamplesRestricted: every manifest passes Pod Security "restricted"
// and sets resources; the podman twins too, but for the exceptions their
// comments give.
func TestExamplesRestricted(t *testing.T) {
	kube, podman := exampleFiles(t)
	for _, path := range append(kube, podman...) {
		t.Run(path, func(t *testing.T) {
			for _, w := range loadExample(t, path).workloads() {
				got := append(restrictedViolations(w.spec), resourceViolations(w.spec)...)
				assert.ElementsMatch(t, restrictedExceptions[path], got, "%s: Pod Security restricted / resources", w)
			}
		})
	}
	// The check itself catches what it must.
	yes, no := true, false
	bad := &corev1.PodSpec{
		HostNetwork: true,
		Volumes:     []corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}},
		Containers: []corev1.Container{{Name: "c", SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &yes, RunAsNonRoot: &no,
			Capabilities:   &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
		}}},
	}
	assert.Equal(t, []string{
		"hostNetwork", "volume h: type not allowed", "container c: allowPrivilegeEscalation must be false",
		"container c: capabilities must drop ALL", "container c: adds capability SYS_ADMIN",
		"container c: runAsNonRoot false", "container c: seccompProfile Unconfined",
	}, restrictedViolations(bad))
	assert.Equal(t, []string{"container c: no resources.requests.cpu", "container c: no resources.requests.memory",
		"container c: no resources.limits.memory"}, resourceViolations(bad))
}

// TestExamplesShowFiles: every lifecycled of examples/*.yaml writes its
// termination message where the pod spec's terminationMessagePath says,
// and every one with hooks logs them on an emptyDir.
func TestExamplesShowFiles(t *testing.T) {
	runKnown := helpFlags(t)
	kube, _ := exampleFiles(t)
	hookLogs := 0
	for _, path := range kube {
		t.Run(path, func(t *testing.T) {
			for _, w := range loadExample(t, path).workloads() {
				for _, c := range allContainers(w.spec) {
					argv, ok := lifecycledArgv(c)
					if !ok || len(argv) == 0 || slices.Contains(lifecycledSubcommands, argv[0]) {
						continue
					}
					if argv[0] == "run" {
						argv = argv[1:]
					}
					flags, err := parseFlags(runKnown, argv)
					require.NoError(t, err)
					require.NotEmpty(t, c.TerminationMessagePath, "%s: container %s: show terminationMessagePath", w, c.Name)
					assert.Equal(t, c.TerminationMessagePath, flags.last("termination-log"),
						"%s: container %s: --termination-log must be the terminationMessagePath", w, c.Name)
					hooks := flags.last("pre-stop") != "" || flags.last("post-start") != "" ||
						flags.last("pre-stop-http") != "" || flags.last("post-start-http") != ""
					if !hooks {
						continue
					}
					dir := flags.last("hook-log-dir")
					require.NotEmpty(t, dir, "%s: container %s has hooks: log them with --hook-log-dir", w, c.Name)
					vol := mountedVolume(c, dir)
					i := slices.IndexFunc(w.spec.Volumes, func(v corev1.Volume) bool { return v.Name == vol })
					require.GreaterOrEqual(t, i, 0, "%s: container %s: --hook-log-dir %s is on no volume", w, c.Name, dir)
					assert.NotNil(t, w.spec.Volumes[i].EmptyDir, "%s: container %s: --hook-log-dir %s: not an emptyDir", w, c.Name, dir)
					hookLogs++
				}
			}
		})
	}
	assert.Positive(t, hookLogs, "no example shows hook logs on an emptyDir")
}

// TestREADMEConfigExplained: every YAML block of the READMEs (fenced
// ```yaml) is a configuration `lifecycled explain --config` accepts and
// whose stop sequence fits its own terminationGracePeriodSeconds. Pod spec
// snippets are fenced ```yaml pod-spec and are not configurations.
func TestREADMEConfigExplained(t *testing.T) {
	root := repoRoot(t)
	mds, err := filepath.Glob(filepath.Join(root, "examples", "*.md"))
	require.NoError(t, err)
	blocks := 0
	for _, md := range append([]string{filepath.Join(root, "README.md")}, mds...) {
		b, err := os.ReadFile(md)
		require.NoError(t, err)
		for i, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
			blocks++
			rel, _ := filepath.Rel(root, md)
			t.Run(fmt.Sprintf("%s#%d", rel, i+1), func(t *testing.T) {
				cfg := filepath.Join(t.TempDir(), "config.yaml")
				require.NoError(t, os.WriteFile(cfg, []byte(m[1]), 0o644))
				require.Contains(t, m[1], "terminationGracePeriodSeconds", "a config example must state the budget it is checked against")
				cmd := exec.Command(lifecycledBin(t), "explain", "--config", cfg, "--", "/app")
				cmd.Env = testEnv(nil)
				out, err := cmd.CombinedOutput()
				assert.NoError(t, err, "lifecycled explain --config:\n%s", out)
				assert.NotContains(t, strings.ToLower(string(out)), "does not fit")
			})
		}
	}
	assert.Positive(t, blocks, "no ```yaml block in the READMEs")
}
