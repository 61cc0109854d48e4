//go:build kube

package kube

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lifecycled/lifecycled/integration/kube/cluster"
)

// variant is one way to run the test backend in a Deployment.
type variant struct {
	key, name string
	// expectZero: the variant claims zero failed requests.
	expectZero bool
	container  func(c *corev1.Container)
}

// The backend (integration/testdata/backend) stops as a naive app does: on
// SIGTERM it closes its listener at once and finishes requests in flight.
var backendCmd = []string{"/backend", "-addr", ":8080"}

var (
	withLifecycled = variant{key: "lifecycled", name: "lifecycled (--drain-delay 5s, no preStop)", expectZero: true, container: func(c *corev1.Container) {
		c.Args = append([]string{"--listen", ":9090", "--ready", "http://127.0.0.1:8080/healthz",
			"--drain-delay", "5s", "--grace-period", "20s", "--termination-grace-period", "30s", "--"}, backendCmd...)
		c.ReadinessProbe = httpProbe("/readyz", 9090)
		c.LivenessProbe = httpProbe("/livez", 9090)
		c.LivenessProbe.PeriodSeconds = 5
	}}
	// withLifecycledKeep keeps /readyz up while it drains
	// (--drain-readiness keep): the EndpointSlice says serving=true,
	// terminating=true, and kube-proxy falls back to it when no ready
	// endpoint is left (TestTerminatingEndpoints).
	withLifecycledKeep = variant{key: "lifecycled-keep", name: "lifecycled (--drain-delay 5s, --drain-readiness keep)", expectZero: true, container: func(c *corev1.Container) {
		withLifecycled.container(c)
		c.Args = append([]string{"--drain-readiness", "keep"}, c.Args...)
	}}
	withTini = variant{key: "tini", name: "tini, no preStop", container: func(c *corev1.Container) {
		c.Command = append([]string{"/tini", "--"}, backendCmd...)
		c.ReadinessProbe = httpProbe("/healthz", 8080)
	}}
	withTiniSleep = variant{key: "tini-prestop-sleep", name: "tini + preStop sleep 5", container: func(c *corev1.Container) {
		c.Command = append([]string{"/tini", "--"}, backendCmd...)
		c.ReadinessProbe = httpProbe("/healthz", 8080)
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "5"}}}}
	}}
)

func httpProbe(path string, port int) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(int32(port))}},
		PeriodSeconds:    1,
		FailureThreshold: 1,
		TimeoutSeconds:   1,
	}
}

// appDeployment is a Deployment of the test app image, with a label
// lifecycled-test for dumpNamespace.
func appDeployment(name string, replicas int32, v variant) *appsv1.Deployment {
	c := corev1.Container{
		Name:            "app",
		Image:           cluster.AppImage,
		ImagePullPolicy: corev1.PullNever,
		Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
	}
	v.container(&c)
	labels := map[string]string{"app": name, "lifecycled-test": "true"}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr(intstr.FromInt32(0)),
					MaxSurge:       ptr(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr(int64(30)),
					Containers:                    []corev1.Container{c},
				},
			},
		},
	}
}

func appService(name string, port int32, target string) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: port, TargetPort: intstr.FromString(target)}},
		},
	}
}

// rolloutResult is one row of the zero-downtime table.
type rolloutResult struct {
	name     string
	load     loadResult
	rollout  time.Duration // kubectl rollout restart -> rollout status done
	drained  time.Duration // ... -> the last old pod gone
	attempts int
}

// rolloutUnderLoad restarts deployment name in ns while clients send
// requests to url from inside the node, and counts failures until every
// old pod is gone.
func rolloutUnderLoad(t *testing.T, ctx context.Context, ns, name, url string, replicas int) rolloutResult {
	t.Helper()
	kubectl(t, ctx, "rollout", "status", "-n", ns, "deployment/"+name, "--timeout=3m")
	nsPath := cluster.NetNSPath(cluster.NetNS)
	waitAnswers(t, ctx, nsPath, url, 20)
	old := map[string]bool{}
	for _, p := range pods(t, ctx, ns, "app="+name) {
		old[p.Name] = true
	}
	require.Len(t, old, replicas)

	l := startLoad(nsPath, url, 2, 2)
	time.Sleep(2 * time.Second) // a baseline before the restart
	start := time.Now()
	kubectl(t, ctx, "rollout", "restart", "-n", ns, "deployment/"+name)
	_, errs, err := kubectlRun(ctx, nil, "rollout", "status", "-n", ns, "deployment/"+name, "--timeout=3m")
	rollout := time.Since(start)
	if err != nil {
		l.Stop()
		t.Fatalf("rollout status: %v: %s", err, errs)
	}
	eventually(t, ctx, "the old pods of "+name+" to be gone", func() bool {
		for _, p := range pods(t, ctx, ns, "app="+name) {
			if old[p.Name] {
				return false
			}
		}
		return true
	})
	drained := time.Since(start)
	time.Sleep(time.Second)
	res := l.Stop()
	return rolloutResult{load: res, rollout: rollout, drained: drained}
}

// TestRollingRestartUnderLoad is the headline claim on a real kubelet,
// endpoints controller and kube-proxy: a Deployment of 2 replicas of a
// naive HTTP app behind a ClusterIP Service, restarted with `kubectl
// rollout restart` while keep-alive and new-connection clients inside the
// node send requests through the Service IP. Wrapped by lifecycled
// (readiness off at SIGTERM, a 5 s drain, no preStop hook) no request may
// fail; tini without a preStop hook (the app stops while kube-proxy still
// sends it traffic) and tini with the folklore `preStop: sleep 5` run the
// same way, side by side, for the table in the README. The examples'
// deployment-entrypoint.yaml runs as it is, too.
func TestRollingRestartUnderLoad(t *testing.T) {
	ctx := testContext(t, 10*time.Minute)
	var rows []rolloutResult
	for _, v := range []variant{withLifecycled, withTini, withTiniSleep} {
		t.Run(v.key, func(t *testing.T) {
			ns := namespace(t)
			applyObjects(t, ctx, ns, appService("app", 80, "http"), appDeployment("app", 2, v))
			url := fmt.Sprintf("http://%s/", serviceIP(t, ctx, ns, "app"))
			r := rolloutUnderLoad(t, ctx, ns, "app", url, 2)
			r.name = v.name
			rows = append(rows, r)
			t.Logf("%s: %s; rollout %s, old pods gone after %s", v.name, r.load, r.rollout.Round(100*time.Millisecond), r.drained.Round(100*time.Millisecond))
			assert.Greater(t, r.load.OK, int64(200), "too few requests to mean anything")
			if v.expectZero {
				assert.Zero(t, r.load.Failed, "failed requests during the rollout: %s", r.load)
			}
		})
	}
	t.Run("example", func(t *testing.T) {
		// explain -f calls the example fine; the cluster then shows that
		// it stops cleanly: a rolling restart under load loses nothing.
		out, err := exec.Command(lifecycledBin, "explain", "-f", filepath.Join(repo, "examples", "deployment-entrypoint.yaml"),
			"--image", "localhost/lifecycled-demo").CombinedOutput()
		require.NoError(t, err, "explain -f:\n%s", out)
		require.Contains(t, string(out), "No problems found.")
		ns := namespace(t)
		for _, d := range example(t, "deployment-entrypoint.yaml") {
			apply(t, ctx, ns, d)
		}
		url := fmt.Sprintf("http://%s/", serviceIP(t, ctx, ns, "web"))
		r := rolloutUnderLoad(t, ctx, ns, "web", url, 2)
		r.name = "examples/deployment-entrypoint.yaml (lifecycled, busybox httpd)"
		rows = append(rows, r)
		t.Logf("%s: %s; rollout %s", r.name, r.load, r.rollout.Round(100*time.Millisecond))
		assert.Greater(t, r.load.OK, int64(200), "too few requests to mean anything")
		assert.Zero(t, r.load.Failed, "failed requests during the rollout: %s", r.load)
	})

	var b strings.Builder
	b.WriteString("\n| wrapper | requests | failed | rollout | old pods gone |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f s | %.1f s |\n", r.name, r.load.OK+r.load.Failed, r.load.Failed, r.rollout.Seconds(), r.drained.Seconds())
	}
	t.Log(b.String())
}
