//go:build kube

package kube

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lifecycled/lifecycled/integration/kube/cluster"
)

// TestProbes runs the kubelet's probes against lifecycled.
func TestProbes(t *testing.T) {
	t.Run("LivenessDuringLongWait", testLivenessDuringLongWait)
	t.Run("StartupProbeNativeSidecar", testStartupProbeNativeSidecar)
	t.Run("ExecProbeNoShell", testExecProbeNoShell)
}

// A container whose dependency comes up only after 20 s, with an httpGet
// livenessProbe on lifecycled's /livez (period 1 s, 3 failures): the
// kubelet must not restart it while it only waits (the contract: /livez
// "must never make a kubelet restart a container that is only waiting"),
// and it becomes Ready once the dependency is up.
func testLivenessDuringLongWait(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	ns := namespace(t)
	p := appPod("waiter", corev1.RestartPolicyAlways,
		"--listen", ":9090", "--wait", "tcp://127.0.0.1:5432", "--ready", "http://127.0.0.1:8080/healthz",
		"--", "/backend", "-addr", ":8080")
	c := &p.Spec.Containers[0]
	c.LivenessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/livez", Port: intstr.FromInt32(9090)}},
		PeriodSeconds: 1, FailureThreshold: 3, TimeoutSeconds: 1,
	}
	c.ReadinessProbe = httpProbe("/readyz", 9090)
	// The dependency, in the same pod: it listens 20 s after it starts.
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
		Name: "db", Image: cluster.AppImage, ImagePullPolicy: corev1.PullNever,
		Command: []string{"sh", "-c", "sleep 20; exec /backend -addr 127.0.0.1:5432"},
	})
	applyObjects(t, ctx, ns, p)
	start := time.Now()
	eventually(t, ctx, "waiter ready", func() bool { return podReady(pod(t, ctx, ns, "waiter")) })
	s, _ := containerStatus(pod(t, ctx, ns, "waiter"), "app")
	t.Logf("ready after %s, %d restarts", time.Since(start).Round(time.Second), s.RestartCount)
	assert.Zero(t, s.RestartCount, "the kubelet restarted a container that was only waiting for its dependency (/livez failed during the wait)")
	assert.Greater(t, time.Since(start), 15*time.Second, "the dependency came up too early to test the wait")
}

// examples/native-sidecar.yaml as it is: the proxy (an init container with
// restartPolicy: Always) under lifecycled with a startupProbe on
// /startupz, which turns 200 only after its postStart hook waited for the
// proxy to answer; the app container starts only after that.
func testStartupProbeNativeSidecar(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	ns := namespace(t)
	for _, d := range example(t, "native-sidecar.yaml") {
		apply(t, ctx, ns, d)
	}
	kubectl(t, ctx, "rollout", "status", "-n", ns, "deployment/shop", "--timeout=2m")
	ps := pods(t, ctx, ns, "app=shop")
	require.Len(t, ps, 1)
	proxy, ok := containerStatus(ps[0], "proxy")
	require.True(t, ok)
	shop, ok := containerStatus(ps[0], "shop")
	require.True(t, ok)
	require.NotNil(t, proxy.Started)
	assert.True(t, *proxy.Started)
	require.NotNil(t, proxy.State.Running)
	require.NotNil(t, shop.State.Running)
	logs := kubectl(t, ctx, "logs", "-n", ns, ps[0].Name, "-c", "proxy")
	hookDone := logTime(t, logs, "hook succeeded")
	t.Logf("proxy started %s, its postStart done %s, shop started %s",
		proxy.State.Running.StartedAt.Format(time.RFC3339), hookDone.Format(time.RFC3339Nano), shop.State.Running.StartedAt.Format(time.RFC3339))
	// startedAt has 1 s steps: the app started in the second of the hook's
	// end or after it.
	assert.False(t, shop.State.Running.StartedAt.Time.Before(hookDone.Truncate(time.Second)), "shop started before the proxy's postStart finished")
	assert.Zero(t, proxy.RestartCount)
	assert.Zero(t, shop.RestartCount)
}

// examples/exec-probes-distroless.yaml as it is: `lifecycled probe` as
// exec readiness and liveness probes in an image without a shell; the pod
// becomes Ready and is never restarted. The same probe on a port where
// nothing listens keeps a pod unready, with lifecycled's one-line reason
// in the pod's events: the probe can fail.
func testExecProbeNoShell(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	ns := namespace(t)
	d := exampleObject[appsv1.Deployment](t, "exec-probes-distroless.yaml", "Deployment")
	broken := d.DeepCopy()
	broken.Name = "static-broken"
	broken.Spec.Selector.MatchLabels = map[string]string{"app": "static-broken"}
	broken.Spec.Template.Labels = map[string]string{"app": "static-broken"}
	broken.Spec.Template.Spec.Containers[0].ReadinessProbe.Exec.Command = []string{"/lifecycled", "probe", "tcp://127.0.0.1:8081"}
	for _, doc := range example(t, "exec-probes-distroless.yaml") {
		apply(t, ctx, ns, doc)
	}
	applyObjects(t, ctx, ns, broken)
	kubectl(t, ctx, "rollout", "status", "-n", ns, "deployment/static", "--timeout=2m")

	_, errs, err := kubectlRun(ctx, nil, "exec", "-n", ns, "deploy/static", "--", "sh", "-c", "true")
	require.Error(t, err, "the image has a shell")
	t.Logf("kubectl exec sh: %s", strings.TrimSpace(errs))
	out := kubectl(t, ctx, "exec", "-n", ns, "deploy/static", "--", "/lifecycled", "probe", "tcp://127.0.0.1:8080")
	assert.Empty(t, strings.TrimSpace(out))

	// Past one liveness period (10 s): the exec liveness probe ran and
	// passed.
	time.Sleep(12 * time.Second)
	ps := pods(t, ctx, ns, "app=static")
	require.Len(t, ps, 1)
	s, _ := containerStatus(ps[0], "static")
	assert.Zero(t, s.RestartCount)
	assert.True(t, podReady(ps[0]))

	bs := pods(t, ctx, ns, "app=static-broken")
	require.Len(t, bs, 1)
	assert.False(t, podReady(bs[0]), "ready although its readiness probe's port is closed")
	var events corev1.EventList
	require.NoError(t, getJSON(ctx, &events, "events", "-n", ns, "--field-selector", "involvedObject.name="+bs[0].Name))
	var msgs []string
	for _, e := range events.Items {
		if e.Reason == "Unhealthy" {
			msgs = append(msgs, e.Message)
		}
	}
	t.Logf("broken probe events: %q", msgs)
	require.NotEmpty(t, msgs)
	assert.Contains(t, strings.Join(msgs, "\n"), "tcp://127.0.0.1:8081 is down")
}
