//go:build kube

package kube

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/lifecycled/lifecycled/integration/kube/cluster"
)

// injectedBinary is where inject's init container puts lifecycled.
const injectedBinary = "/lifecycled-bin/lifecycled"

// stockYAML is objs as one multi-document YAML manifest, as a user keeps it.
func stockYAML(t *testing.T, objs ...any) []byte {
	t.Helper()
	var docs [][]byte
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		require.NoError(t, err)
		docs = append(docs, b)
	}
	return bytes.Join(docs, []byte("---\n"))
}

// inject runs `lifecycled inject` on a manifest, the lifecycled image the
// cluster holds as the init container's, and returns what it printed.
func inject(t *testing.T, manifest []byte, flags ...string) []byte {
	t.Helper()
	f := filepath.Join(t.TempDir(), "stock.yaml")
	require.NoError(t, os.WriteFile(f, manifest, 0o644))
	args := append([]string{"inject", "-f", f, "--lifecycled-image", cluster.LifecycledImage}, flags...)
	cmd := exec.Command(lifecycledBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "lifecycled %s: %s", strings.Join(args, " "), stderr.String())
	return out
}

// checkInjectedPod asserts that pod ran lifecycled from the emptyDir: the
// init container copied it and exited 0, and the container's PID 1 is it.
func checkInjectedPod(t *testing.T, ctx context.Context, ns string, p corev1.Pod, container string) {
	t.Helper()
	require.NotEmpty(t, p.Status.InitContainerStatuses, "pod %s has no init container status", p.Name)
	init := p.Status.InitContainerStatuses[0]
	if assert.NotNil(t, init.State.Terminated, "pod %s: init container %s not terminated: %+v", p.Name, init.Name, init.State) {
		assert.Zero(t, init.State.Terminated.ExitCode, "pod %s: init container %s", p.Name, init.Name)
	}
	cmdline := kubectl(t, ctx, "exec", "-n", ns, p.Name, "-c", container, "--", "cat", "/proc/1/cmdline")
	assert.True(t, strings.HasPrefix(cmdline, injectedBinary+"\x00"), "pod %s: PID 1 is %q, not the injected lifecycled", p.Name, strings.ReplaceAll(cmdline, "\x00", " "))
}

// TestInjectStockWorkloads is issue 21's proof with no image rebuilt: the
// stock Deployment of TestRollingRestartUnderLoad (tini, no preStop, its
// readinessProbe on the app), which loses requests in a rolling restart
// under load, loses none once `lifecycled inject` has put lifecycled into
// its manifest; the binary comes from the lifecycled image through an init
// container and an emptyDir, and the app image (the same as the stock
// run's) is untouched. An injected Job with a native sidecar completes with
// lifecycled's termination message; an injected StatefulSet and DaemonSet
// come up ready. The PSS of lifecycled in injected pods and in pods whose
// image has it as ENTRYPOINT is measured for the README.
func TestInjectStockWorkloads(t *testing.T) {
	ctx := testContext(t, 12*time.Minute)
	t.Run("deployment", func(t *testing.T) {
		stock := stockYAML(t, appService("app", 80, "http"), appDeployment("app", 2, withTini))
		var rows []string
		for _, injected := range []bool{false, true} {
			name := "stock (tini, no preStop)"
			m := stock
			if injected {
				name = "injected"
				m = inject(t, stock)
			}
			ns := namespace(t)
			apply(t, ctx, ns, m)
			url := fmt.Sprintf("http://%s/", serviceIP(t, ctx, ns, "app"))
			r := rolloutUnderLoad(t, ctx, ns, "app", url, 2, 2, 2)
			rows = append(rows, fmt.Sprintf("| %s | %d | %d | %.1f s | %.1f s | %v |", name, r.load.OK+r.load.Failed, r.load.Failed,
				r.rollout.Seconds(), r.drained.Seconds(), r.drains))
			t.Logf("%s: %s; rollout %s, old pods gone after %s; drains %v", name, r.load, r.rollout.Round(100*time.Millisecond), r.drained.Round(100*time.Millisecond), r.drains)
			assert.Greater(t, r.load.OK, int64(200), "too few requests to mean anything")
			if !injected {
				continue
			}
			assert.Zero(t, r.load.Failed, "failed requests during the rollout of the injected Deployment: %s", r.load)
			require.Len(t, r.drains, 2, "a drain in lifecycled's logs of every old pod")
			for _, p := range pods(t, ctx, ns, "app=app") {
				checkInjectedPod(t, ctx, ns, p, "app")
			}
		}
		t.Logf("\n| manifest | requests | failed | rollout | old pods gone | drains |\n|---|---|---|---|---|---|\n%s", strings.Join(rows, "\n"))
	})

	t.Run("job", func(t *testing.T) {
		ns := namespace(t)
		always := corev1.ContainerRestartPolicyAlways
		job := &batchv1.Job{
			TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			ObjectMeta: metav1.ObjectMeta{Name: "batch"},
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr(int32(0)),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					InitContainers: []corev1.Container{{Name: "proxy", Image: cluster.AppImage, ImagePullPolicy: corev1.PullNever,
						RestartPolicy: &always, Command: []string{"/backend", "-addr", ":8081"}}},
					Containers: []corev1.Container{{Name: "main", Image: cluster.AppImage, ImagePullPolicy: corev1.PullNever,
						Command: []string{"sh", "-c", "until wget -q -O /dev/null http://127.0.0.1:8081/; do sleep 0.2; done; echo done"}}},
				}},
			},
		}
		apply(t, ctx, ns, inject(t, stockYAML(t, job)))
		kubectl(t, ctx, "wait", "-n", ns, "--for=condition=Complete", "job/batch", "--timeout=3m")
		ps := pods(t, ctx, ns, "job-name=batch")
		require.Len(t, ps, 1)
		s, ok := containerStatus(ps[0], "main")
		require.True(t, ok)
		require.NotNil(t, s.State.Terminated)
		assert.Zero(t, s.State.Terminated.ExitCode)
		assert.Contains(t, s.State.Terminated.Message, "child exited with code 0", "main's termination message is lifecycled's")
		t.Logf("job: main terminated, message %q", s.State.Terminated.Message)
	})

	t.Run("statefulset-daemonset", func(t *testing.T) {
		ns := namespace(t)
		d := appDeployment("sts", 1, withTini)
		sts := &appsv1.StatefulSet{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
			ObjectMeta: metav1.ObjectMeta{Name: "sts"},
			Spec:       appsv1.StatefulSetSpec{Replicas: ptr(int32(2)), ServiceName: "sts", Selector: d.Spec.Selector, Template: d.Spec.Template},
		}
		dd := appDeployment("ds", 1, withTini)
		ds := &appsv1.DaemonSet{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
			ObjectMeta: metav1.ObjectMeta{Name: "ds"},
			Spec:       appsv1.DaemonSetSpec{Selector: dd.Spec.Selector, Template: dd.Spec.Template},
		}
		apply(t, ctx, ns, inject(t, stockYAML(t, sts, ds)))
		kubectl(t, ctx, "rollout", "status", "-n", ns, "statefulset/sts", "--timeout=3m")
		kubectl(t, ctx, "rollout", "status", "-n", ns, "daemonset/ds", "--timeout=3m")
		for _, sel := range []string{"app=sts", "app=ds"} {
			ps := pods(t, ctx, ns, sel)
			require.NotEmpty(t, ps, sel)
			for _, p := range ps {
				assert.True(t, podReady(p), "pod %s not ready", p.Name)
				checkInjectedPod(t, ctx, ns, p, "app")
			}
		}
	})

	t.Run("pss", func(t *testing.T) {
		// Two pods each way on the one node: lifecycled from the image
		// (its pages shared through the image layer's page cache) and
		// injected (a file of each pod's own emptyDir).
		ns := namespace(t)
		built := appDeployment("built", 2, withLifecycled)
		injected := inject(t, stockYAML(t, appDeployment("injected", 2, withTini)))
		applyObjects(t, ctx, ns, built)
		apply(t, ctx, ns, injected)
		kubectl(t, ctx, "rollout", "status", "-n", ns, "deployment/built", "--timeout=3m")
		kubectl(t, ctx, "rollout", "status", "-n", ns, "deployment/injected", "--timeout=3m")
		var rows []string
		for _, c := range []struct{ deployment, binary string }{{"built", "/lifecycled"}, {"injected", injectedBinary}} {
			for _, p := range pods(t, ctx, ns, "app="+c.deployment) {
				m, ok := podProcessMemory(string(p.UID), c.binary)
				if !assert.True(t, ok, "no %s process of pod %s found in /proc", c.binary, p.Name) {
					continue
				}
				rows = append(rows, fmt.Sprintf("| %s | %s | %d | %d | %d |", c.deployment, p.Name, m.pss, m.binaryPss, m.binaryRss))
			}
		}
		t.Logf("lifecycled's memory per pod, KiB (the binary's mappings: its file's pages, shared or not)\n| lifecycled | pod | PSS | PSS of the binary | RSS of the binary |\n|---|---|---|---|---|\n%s", strings.Join(rows, "\n"))
	})
}

// processMemory is one process's memory, in KiB: its PSS, and the PSS
// and RSS of the mappings of its own binary.
type processMemory struct{ pss, binaryPss, binaryRss int }

// podProcessMemory finds the process of pod podUID (by its cgroup) whose
// command starts with binary and reads its smaps.
func podProcessMemory(podUID, binary string) (processMemory, bool) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range procs {
		cmd, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || !bytes.HasPrefix(cmd, []byte(binary+"\x00")) {
			continue
		}
		cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
		if err != nil || !(bytes.Contains(cg, []byte(podUID)) || bytes.Contains(cg, []byte(strings.ReplaceAll(podUID, "-", "_")))) {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join(dir, "exe"), &st) != nil {
			continue
		}
		return readSmaps(filepath.Join(dir, "smaps"), strconv.FormatUint(st.Ino, 10))
	}
	return processMemory{}, false
}

// readSmaps sums Pss over every mapping, and Pss and Rss over the mappings
// of the file with inode ino (the process's binary).
func readSmaps(path, ino string) (processMemory, bool) {
	f, err := os.Open(path)
	if err != nil {
		return processMemory{}, false
	}
	defer f.Close()
	var m processMemory
	inBinary := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if !strings.HasSuffix(fs[0], ":") { // a mapping's header: range perms offset dev inode [path]
			inBinary = len(fs) >= 5 && fs[4] == ino
			continue
		}
		if len(fs) < 2 {
			continue
		}
		v, err := strconv.Atoi(fs[1])
		if err != nil {
			continue
		}
		switch fs[0] {
		case "Pss:":
			m.pss += v
			if inBinary {
				m.binaryPss += v
			}
		case "Rss:":
			if inBinary {
				m.binaryRss += v
			}
		}
	}
	return m, sc.Err() == nil
}
