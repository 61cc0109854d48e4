//go:build kube

package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/lifecycled/lifecycled/integration/kube/cluster"
	"github.com/lifecycled/lifecycled/internal/proctest"
)

// jobEnded waits until the Job has a Complete or Failed condition and
// returns its type.
func jobEnded(t *testing.T, ctx context.Context, ns, name string) batchv1.JobConditionType {
	t.Helper()
	var ended batchv1.JobConditionType
	eventually(t, ctx, "job "+name+" to end", func() bool {
		var j batchv1.Job
		if err := getJSON(ctx, &j, "job", "-n", ns, name); err != nil {
			return false
		}
		for _, c := range j.Status.Conditions {
			if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
				ended = c.Type
				return true
			}
		}
		return false
	})
	return ended
}

// TestJobWithSidecar: a Job whose pod has a sidecar completes — with
// lifecycled's --exit-with (examples/job-with-sidecar.yaml as it is) and
// with a native sidecar (the proxy of examples/native-sidecar.yaml as an
// init container with restartPolicy: Always) — and still ends when its
// main container is killed instead of finishing.
func TestJobWithSidecar(t *testing.T) {
	t.Run("ExitWith", func(t *testing.T) {
		ctx := testContext(t, 3*time.Minute)
		ns := namespace(t)
		for _, d := range example(t, "job-with-sidecar.yaml") {
			apply(t, ctx, ns, d)
		}
		start := time.Now()
		require.Equal(t, batchv1.JobComplete, jobEnded(t, ctx, ns, "report"))
		t.Logf("job report complete after %s", time.Since(start).Round(time.Second))
		logs := kubectl(t, ctx, "logs", "-n", ns, "job/report", "-c", "proxy")
		assert.Contains(t, logs, "proxy: flushing buffers", "the sidecar's preStop ran")
	})

	t.Run("NativeSidecar", func(t *testing.T) {
		ctx := testContext(t, 3*time.Minute)
		ns := namespace(t)
		shop := exampleObject[appsv1.Deployment](t, "native-sidecar.yaml", "Deployment")
		job := exampleObject[batchv1.Job](t, "job-with-sidecar.yaml", "Job")
		job.Name = "native"
		spec := &job.Spec.Template.Spec
		spec.InitContainers = shop.Spec.Template.Spec.InitContainers // the proxy, restartPolicy: Always
		// The volumes the proxy mounts (its hook logs), and no other.
		mounted := map[string]bool{}
		for _, c := range spec.InitContainers {
			for _, m := range c.VolumeMounts {
				mounted[m.Name] = true
			}
		}
		spec.Volumes = nil
		for _, v := range shop.Spec.Template.Spec.Volumes {
			if mounted[v.Name] {
				spec.Volumes = append(spec.Volumes, v)
			}
		}
		spec.Containers = []corev1.Container{{
			Name: "main", Image: cluster.DemoImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Args: []string{"--", "sh", "-c", "echo main: working; sleep 3; echo main: done"},
		}}
		applyObjects(t, ctx, ns, job)
		start := time.Now()
		require.Equal(t, batchv1.JobComplete, jobEnded(t, ctx, ns, "native"))
		t.Logf("job native complete after %s", time.Since(start).Round(time.Second))
	})

	// The main container dies as a whole (every process SIGKILLed, as the
	// OOM killer or a node-level kill does): lifecycled in it never writes
	// "exited" in its tombstone. The sidecar watching it must still stop,
	// so that the pod, and the Job, end.
	t.Run("MainKilled", func(t *testing.T) {
		ctx := testContext(t, 3*time.Minute)
		ns := namespace(t)
		job := exampleObject[batchv1.Job](t, "job-with-sidecar.yaml", "Job")
		job.Name = "killed"
		job.Spec.BackoffLimit = ptr(int32(0))
		main := &job.Spec.Template.Spec.Containers[0]
		require.Equal(t, "main", main.Name)
		main.Args = []string{"--tombstone-dir", "/lifecycle", "--name", "main", "--", "sleep", "600"}
		applyObjects(t, ctx, ns, job)
		var p corev1.Pod
		eventually(t, ctx, "main and proxy running", func() bool {
			ps := pods(t, ctx, ns, "job-name=killed")
			if len(ps) != 1 {
				return false
			}
			p = ps[0]
			m, ok1 := containerStatus(p, "main")
			x, ok2 := containerStatus(p, "proxy")
			return ok1 && ok2 && m.State.Running != nil && x.State.Running != nil
		})
		m, _ := containerStatus(p, "main")
		pids := containerPIDs(t, m.ContainerID)
		require.NotEmpty(t, pids, "no processes found for %s", m.ContainerID)
		// main's tombstone says running, and the proxy has seen its lock
		// held (two of its looks, so the first has ended): only then is a
		// free lock a death to it. Both are read through main's lifecycled.
		var lifecycled int
		for _, pid := range pids {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "lifecycled" {
				lifecycled = pid
			}
		}
		require.NotZero(t, lifecycled, "no lifecycled among %v", pids)
		dir := fmt.Sprintf("/proc/%d/root/lifecycle", lifecycled)
		eventually(t, ctx, "main's tombstone to say running", func() bool {
			var ts struct{ Phase string }
			b, err := os.ReadFile(filepath.Join(dir, "main.json"))
			return err == nil && json.Unmarshal(b, &ts) == nil && ts.Phase == "running"
		})
		require.NoError(t, proctest.WaitReads(ctx, filepath.Join(dir, "main.lock"), 2), "the proxy never looked at main's lock")
		for _, pid := range pids {
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		}
		killed := time.Now()
		ended := jobEnded(t, testContext(t, 90*time.Second), ns, "killed")
		t.Logf("main killed (pids %v); job %s after %s", pids, ended, time.Since(killed).Round(time.Second))
		p = pod(t, ctx, ns, p.Name)
		x, _ := containerStatus(p, "proxy")
		require.NotNil(t, x.State.Terminated, "the sidecar is still running")
	})

	// An OOM kill inside main: its child outgrows the container's memory
	// limit; lifecycled sees the child die and the sidecar stops.
	t.Run("MainOOMKilled", func(t *testing.T) {
		ctx := testContext(t, 3*time.Minute)
		ns := namespace(t)
		job := exampleObject[batchv1.Job](t, "job-with-sidecar.yaml", "Job")
		job.Name = "oom"
		job.Spec.BackoffLimit = ptr(int32(0))
		main := &job.Spec.Template.Spec.Containers[0]
		main.Args = []string{"--tombstone-dir", "/lifecycle", "--name", "main", "--", "sh", "-c", "sleep 2; head -c 200m /dev/zero | tail"}
		main.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("48Mi")}
		applyObjects(t, ctx, ns, job)
		ended := jobEnded(t, ctx, ns, "oom")
		ps := pods(t, ctx, ns, "job-name=oom")
		require.Len(t, ps, 1)
		m, _ := containerStatus(ps[0], "main")
		require.NotNil(t, m.State.Terminated)
		t.Logf("job %s; main ended with %d (%s)", ended, m.State.Terminated.ExitCode, m.State.Terminated.Reason)
		assert.NotZero(t, m.State.Terminated.ExitCode)
	})
}

// containerPIDs finds a container's processes on the host, from its cgroup
// (the kubelet's cgroupfs layout ends each container's path with its ID).
func containerPIDs(t *testing.T, containerID string) []int {
	t.Helper()
	id := containerID[strings.Index(containerID, "://")+3:]
	var pids []int
	root := filepath.Join("/sys/fs/cgroup/pids", cluster.CgroupRoot)
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() != id {
			return nil
		}
		b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return fs.SkipDir
	})
	return pids
}
