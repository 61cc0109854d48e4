//go:build kube

package kube

import (
	"fmt"
	"net"
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

// backendPod is a dependency: the test backend serving HTTP on port, with
// a readiness probe, so that its Service gets a ready endpoint only once
// it answers.
func backendPod(name string, port int32) *corev1.Pod {
	p := appPod(name, corev1.RestartPolicyAlways)
	p.Labels["app"] = name
	c := &p.Spec.Containers[0]
	c.Command = []string{"/backend", "-addr", fmt.Sprintf(":%d", port)}
	c.Ports = []corev1.ContainerPort{{ContainerPort: port}}
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(port)}},
		PeriodSeconds: 1,
	}
	return p
}

func plainService(name string, port int32) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Port: port, TargetPort: intstr.FromInt32(port)}},
		},
	}
}

// TestInitContainerWait runs examples/init-container-wait.yaml: its init
// container (`lifecycled wait tcp://postgres:5432
// http://inventory:8080/healthz`) holds the pod in Init while the
// dependencies' Services have no ready endpoint, and the app starts soon
// after they get one. The cluster has no DNS add-on, so the test adds
// hostAliases for the two Service names (the only change to the example).
func TestInitContainerWait(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	ns := namespace(t)
	applyObjects(t, ctx, ns, plainService("postgres", 5432), plainService("inventory", 8080))
	pgIP, invIP := serviceIP(t, ctx, ns, "postgres"), serviceIP(t, ctx, ns, "inventory")

	d := exampleObject[appsv1.Deployment](t, "init-container-wait.yaml", "Deployment")
	d.Spec.Template.Spec.HostAliases = []corev1.HostAlias{
		{IP: pgIP, Hostnames: []string{"postgres"}},
		{IP: invIP, Hostnames: []string{"inventory"}},
	}
	d.Spec.Template.Labels["lifecycled-test"] = "true"
	applyObjects(t, ctx, ns, d)

	// Held in Init: the init container runs, the app has not started.
	var podName string
	eventually(t, ctx, "the orders pod's init container running", func() bool {
		ps := pods(t, ctx, ns, "app=orders")
		if len(ps) != 1 {
			return false
		}
		podName = ps[0].Name
		s, ok := containerStatus(ps[0], "wait-for-deps")
		return ok && s.State.Running != nil
	})
	time.Sleep(5 * time.Second)
	p := pod(t, ctx, ns, podName)
	s, _ := containerStatus(p, "wait-for-deps")
	require.NotNil(t, s.State.Running, "the init container gave up or ended: %+v", s.State)
	app, _ := containerStatus(p, "orders")
	require.Nil(t, app.State.Running, "orders started before its dependencies")
	require.Zero(t, s.RestartCount)

	applyObjects(t, ctx, ns, backendPod("postgres", 5432), backendPod("inventory", 8080))
	// When both Services answer from the node, kube-proxy has programmed
	// them: from then on the init container can connect.
	dial := cluster.Dialer(cluster.NetNSPath(cluster.NetNS))
	var reachable time.Time
	eventually(t, ctx, "the dependencies reachable through their Services", func() bool {
		for _, addr := range []string{net.JoinHostPort(pgIP, "5432"), net.JoinHostPort(invIP, "8080")} {
			c, err := dial(ctx, "tcp", addr)
			if err != nil {
				return false
			}
			c.Close()
		}
		reachable = time.Now()
		return true
	})
	var started time.Time
	eventually(t, ctx, "orders running", func() bool {
		s, ok := containerStatus(pod(t, ctx, ns, podName), "orders")
		if ok && s.State.Running != nil {
			started = s.State.Running.StartedAt.Time
			return true
		}
		return false
	})
	logs := kubectl(t, ctx, "logs", "-n", ns, podName, "-c", "wait-for-deps")
	var lastUp time.Time
	for _, target := range []string{"tcp://postgres:5432", "http://inventory:8080/healthz"} {
		require.Contains(t, logs, target)
		if at := logTimeWith(t, logs, "dependency up", target); at.After(lastUp) {
			lastUp = at
		}
	}
	t.Logf("dependencies reachable at %s; lifecycled wait saw them up %s later; orders started %s later (startedAt has 1 s steps)",
		reachable.Format("15:04:05.000"), lastUp.Sub(reachable).Round(time.Millisecond), started.Sub(reachable).Round(time.Millisecond))
	// lifecycled retries with backoff capped at 1 s: it sees the
	// dependencies within about a second of their becoming reachable
	// (the test's own poll adds up to 200 ms).
	assert.Less(t, lastUp.Sub(reachable), 1500*time.Millisecond)
	// The kubelet then starts the app (PLEG relists every second).
	assert.Less(t, started.Sub(lastUp), 4*time.Second)
	s, _ = containerStatus(pod(t, ctx, ns, podName), "wait-for-deps")
	assert.Zero(t, s.RestartCount, "the init container waited without failing")
	eventually(t, ctx, "orders ready", func() bool { return podReady(pod(t, ctx, ns, podName)) })
}

// logTimeWith is the time of the first lifecycled log line with msg that
// mentions target.
func logTimeWith(t *testing.T, logs, msg, target string) time.Time {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, target) {
			lines = append(lines, l)
		}
	}
	return logTime(t, strings.Join(lines, "\n"), msg)
}
