//go:build kube

package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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

// lifecycledContainer wraps the backend in lifecycled with the given drain
// flags. The kubelet probes lifecycled's /readyz and /livez on 9090, never
// the app's port 8080: the adaptive drain counts new connections to 8080.
func lifecycledContainer(drain ...string) func(c *corev1.Container) {
	return func(c *corev1.Container) {
		c.Args = append([]string{"--listen", ":9090", "--ready", "http://127.0.0.1:8080/healthz"}, drain...)
		c.Args = append(c.Args, "--grace-period", "20s", "--termination-grace-period", "30s", "--")
		c.Args = append(c.Args, backendCmd...)
		c.ReadinessProbe = httpProbe("/readyz", 9090)
		c.LivenessProbe = httpProbe("/livez", 9090)
		c.LivenessProbe.PeriodSeconds = 5
	}
}

var (
	withLifecycled = variant{key: "lifecycled", name: "lifecycled (--drain-delay 5s, no preStop)", expectZero: true,
		container: lifecycledContainer("--drain-delay", "5s")}
	// withLifecycledAdaptive ends the drain once no new connection to the
	// app has come for 1 s (kube-proxy has dropped the pod), at least 1 s
	// and at most 10 s after SIGTERM; 10 s + the 20 s grace period fit the
	// pod's 30 s.
	withLifecycledAdaptive = variant{key: "lifecycled-adaptive", name: "lifecycled (--drain-quiet 1s --drain-min 1s --drain-delay 10s)", expectZero: true,
		container: lifecycledContainer("--drain-quiet", "1s", "--drain-min", "1s", "--drain-delay", "10s")}
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
	// drains are the old pods' drains, as lifecycled logged them (none
	// for a variant without lifecycled).
	drains []podDrain
}

// podDrain is one pod's drain: from lifecycled's "stop requested" to its
// "sending stop signal", and in adaptive mode what ended it.
type podDrain struct {
	pod    string
	stopAt time.Time // SIGTERM reached lifecycled
	took   time.Duration
	// arrivals and lastArrival: the new connections the adaptive drain
	// counted after SIGTERM, and when the last one came (-1: not adaptive).
	arrivals    int
	lastArrival time.Duration
	// requestBytes and lastByte: the request bytes it counted on open
	// connections, and when the last came (-1: none).
	requestBytes int64
	lastByte     time.Duration
	ceiling      bool // the adaptive drain ran into --drain-delay
}

func (d podDrain) String() string {
	if d.arrivals < 0 {
		return fmt.Sprintf("%.1fs", d.took.Seconds())
	}
	ceiling := ""
	if d.ceiling {
		ceiling = ", ceiling"
	}
	bytes := ""
	if d.lastByte >= 0 {
		bytes = fmt.Sprintf(", %d request bytes, last at %.1fs", d.requestBytes, d.lastByte.Seconds())
	}
	return fmt.Sprintf("%.1fs (%d new conns, last at %.1fs%s%s)", d.took.Seconds(), d.arrivals, d.lastArrival.Seconds(), bytes, ceiling)
}

// followDrain streams a pod's logs from now until its containers end
// (`kubectl logs -f`: the pod is gone soon after, and its logs with it);
// the returned func waits for the stream, at most until ctx ends, and
// reads lifecycled's drain from it (ok false: no drain in the logs).
func followDrain(ctx context.Context, ns, pod string) (wait func() (podDrain, bool)) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := kubectlCmd(ctx, "logs", "-f", "--all-containers", "-n", ns, pod)
	var out bytes.Buffer
	cmd.Stdout = &out
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cmd.Run()
	}()
	return func() (podDrain, bool) {
		// The pod is gone already: its stream ends at once, or never.
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		cancel()
		<-done
		return parseDrain(pod, out.String())
	}
}

// parseDrain finds lifecycled's drain in its JSON log lines.
func parseDrain(pod, logs string) (podDrain, bool) {
	d := podDrain{pod: pod, arrivals: -1, lastByte: -1}
	var stop, signal time.Time
	for _, l := range strings.Split(logs, "\n") {
		var e struct {
			Time         time.Time `json:"time"`
			Msg          string    `json:"msg"`
			Arrivals     int       `json:"arrivals"`
			LastArrival  float64   `json:"last_arrival_after_seconds"`
			RequestBytes int64     `json:"request_bytes"`
			LastByte     *float64  `json:"last_request_byte_after_seconds"`
		}
		if json.Unmarshal([]byte(l), &e) != nil {
			continue
		}
		switch e.Msg {
		case "stop requested":
			stop = e.Time
		case "sending stop signal":
			signal = e.Time
		case "adaptive drain: no new connection or request byte for the quiet period",
			"adaptive drain: no new connection for the quiet period", "adaptive drain: drain delay reached, traffic still arriving":
			d.arrivals, d.lastArrival = e.Arrivals, time.Duration(e.LastArrival*float64(time.Second))
			d.requestBytes = e.RequestBytes
			if e.LastByte != nil {
				d.lastByte = time.Duration(*e.LastByte * float64(time.Second))
			}
			d.ceiling = strings.Contains(e.Msg, "drain delay reached")
		}
	}
	if stop.IsZero() || signal.IsZero() {
		return d, false
	}
	d.stopAt, d.took = stop, signal.Sub(stop)
	return d, true
}

// rolloutUnderLoad restarts deployment name in ns while clients send
// requests to url from inside the node, and counts failures until every
// old pod is gone.
//
// keepAlive and newConn are the load's clients of each kind (startLoad).
func rolloutUnderLoad(t *testing.T, ctx context.Context, ns, name, url string, replicas, keepAlive, newConn int) rolloutResult {
	t.Helper()
	nsPath := cluster.NetNSPath(cluster.NetNS)
	return rolloutUnderLoadWith(t, ctx, ns, name, url, replicas, func() *load { return startLoad(nsPath, url, keepAlive, newConn) })
}

// rolloutUnderLoadWith is rolloutUnderLoad with the load that start starts.
func rolloutUnderLoadWith(t *testing.T, ctx context.Context, ns, name, url string, replicas int, start func() *load) rolloutResult {
	t.Helper()
	kubectl(t, ctx, "rollout", "status", "-n", ns, "deployment/"+name, "--timeout=3m")
	nsPath := cluster.NetNSPath(cluster.NetNS)
	waitAnswers(t, ctx, nsPath, url, 20)
	old := map[string]bool{}
	for _, p := range pods(t, ctx, ns, "app="+name) {
		old[p.Name] = true
	}
	require.Len(t, old, replicas)

	var follows []func() (podDrain, bool)
	for p := range old {
		follows = append(follows, followDrain(ctx, ns, p))
	}

	l := start()
	time.Sleep(2 * time.Second) // a baseline before the restart
	began := time.Now()
	kubectl(t, ctx, "rollout", "restart", "-n", ns, "deployment/"+name)
	_, errs, err := kubectlRun(ctx, nil, "rollout", "status", "-n", ns, "deployment/"+name, "--timeout=3m")
	rollout := time.Since(began)
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
	drained := time.Since(began)
	time.Sleep(time.Second)
	res := l.Stop()
	r := rolloutResult{load: res, rollout: rollout, drained: drained}
	for _, wait := range follows {
		if d, ok := wait(); ok {
			r.drains = append(r.drains, d)
		}
	}
	sort.Slice(r.drains, func(i, j int) bool { return r.drains[i].stopAt.Before(r.drains[j].stopAt) })
	return r
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
			r := rolloutUnderLoad(t, ctx, ns, "app", url, 2, 2, 2)
			r.name = v.name
			rows = append(rows, r)
			t.Logf("%s: %s; rollout %s, old pods gone after %s; drains %v", v.name, r.load, r.rollout.Round(100*time.Millisecond), r.drained.Round(100*time.Millisecond), r.drains)
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
		r := rolloutUnderLoad(t, ctx, ns, "web", url, 2, 2, 2)
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

// TestRollingRestartAdaptiveDrain measures what the adaptive drain
// (--drain-quiet) buys in a real rolling update: a Deployment of 4
// replicas of the naive backend behind a ClusterIP Service, maxSurge and
// maxUnavailable 25% (Kubernetes' defaults: one pod at a time each way),
// restarted under new-connection clients (TestRollingRestartUnderLoad's
// new-connection half, doubled), with
// lifecycled's fixed 5 s drain delay and with the adaptive drain, both
// with terminationGracePeriodSeconds 30. Neither may fail a request; each
// old pod's drain (from lifecycled's logs) must be the fixed 5 s in one
// and end well before it in the other, once kube-proxy has dropped the pod
// and its new connections have stopped for the 1 s quiet period.
//
// Where the rollout's wall time is concerned, two nodes: one with room to
// spare, where Kubernetes does not wait for terminating pods (the
// ReplicaSet no longer counts them) and the drain only delays the moment
// the old pods are gone; and a full one, whose CPU the 4 pods' requests
// take whole, as bin-packing and cluster autoscalers leave nodes, where a
// terminating pod holds its request until it is gone, the surge pod waits
// Pending for it, and so every step of the rollout waits for a drain.
// There the adaptive rollout must be at least 4 s shorter (1 s a pod; the
// drains differ by ~3 s each).
func TestRollingRestartAdaptiveDrain(t *testing.T) {
	ctx := testContext(t, 12*time.Minute)
	const replicas = 4
	type key struct{ node, mode string }
	rows := map[key]rolloutResult{}
	// full-l7: the full node, its clients behind TestTrafficShapesInCluster's
	// L7 proxy (pooled upstream connections, endpoints from EndpointSlices).
	nodes := []string{"spare", "full", "full-l7"}
	modes := []variant{withLifecycled, withLifecycledAdaptive}
	for _, node := range nodes {
		for _, v := range modes {
			t.Run(node+"/"+v.key, func(t *testing.T) {
				ns := namespace(t)
				d := appDeployment("app", replicas, v)
				d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{
					MaxSurge:       ptr(intstr.FromString("25%")),
					MaxUnavailable: ptr(intstr.FromString("25%")),
				}
				if strings.HasPrefix(node, "full") {
					d.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{
						corev1.ResourceCPU: fillNode(t, ctx, replicas),
					}
					// The next case needs the whole node again.
					t.Cleanup(func() {
						ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
						defer cancel()
						_, _, _ = kubectlRun(ctx, nil, "delete", "-n", ns, "deployment", "app", "--cascade=foreground", "--wait", "--timeout=90s")
					})
				}
				applyObjects(t, ctx, ns, appService("app", 80, "http"), d)
				url := fmt.Sprintf("http://%s/", serviceIP(t, ctx, ns, "app"))
				var proxy *l7Proxy
				if node == "full-l7" {
					proxy = startL7Proxy(t, ctx, ns, "app", cluster.NetNSPath(cluster.NetNS))
					url = proxy.url
				}
				// Clients that open a connection per request: a
				// keep-alive client through a plain ClusterIP keeps its
				// connection to the old pod until the app closes it, so
				// its requests never stop and the request-aware drain
				// rightly waits its ceiling (lbsim's
				// TestZeroDowntimeTrafficShapes shows that case).
				r := rolloutUnderLoad(t, ctx, ns, "app", url, replicas, 0, 4)
				r.name = v.name
				rows[key{node, v.key}] = r
				t.Logf("%s node, %s: %s; rollout status after %s, old pods gone after %s; drains %v", node, v.name, r.load,
					r.rollout.Round(100*time.Millisecond), r.drained.Round(100*time.Millisecond), r.drains)
				assert.Greater(t, r.load.OK, int64(400), "too few requests to mean anything")
				assert.Zero(t, r.load.Failed, "failed requests during the rollout: %s", r.load)
				require.Len(t, r.drains, replicas, "a drain in the logs of every old pod")
				saw := 0
				for _, d := range r.drains {
					if v.key == withLifecycled.key {
						assert.InDelta(t, 5.0, d.took.Seconds(), 0.5, "fixed drain of %s", d.pod)
						continue
					}
					// The drain ended on the traffic's end: at least
					// the quiet period, well short of the fixed 5 s.
					assert.False(t, d.ceiling, "adaptive drain of %s ran into --drain-delay: %s", d.pod, d)
					assert.GreaterOrEqual(t, d.took, time.Second, "adaptive drain of %s", d.pod)
					assert.Less(t, d.took, 4*time.Second, "adaptive drain of %s", d.pod)
					if d.arrivals > 0 || d.requestBytes > 0 {
						saw++
					}
				}
				if v.key == withLifecycledAdaptive.key {
					// A pod whose SIGTERM came after kube-proxy (or the
					// L7 proxy) had dropped it sees no traffic, rightly;
					// a drain that sees none in any pod is blind.
					assert.Positive(t, saw, "no adaptive drain saw traffic after SIGTERM: %v", r.drains)
				}
			})
		}
	}

	var b strings.Builder
	b.WriteString("\n| node | drain | requests | failed | rollout status | old pods gone | per-pod drain (in SIGTERM order) |\n|---|---|---|---|---|---|---|\n")
	for _, node := range nodes {
		for _, v := range modes {
			r, ok := rows[key{node, v.key}]
			if !ok {
				continue
			}
			var ds []string
			for _, d := range r.drains {
				ds = append(ds, d.String())
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %.1f s | %.1f s | %s |\n", node, r.name, r.load.OK+r.load.Failed, r.load.Failed,
				r.rollout.Seconds(), r.drained.Seconds(), strings.Join(ds, "; "))
		}
	}
	t.Log(b.String())
	for _, node := range []string{"full", "full-l7"} {
		fixed, okF := rows[key{node, withLifecycled.key}]
		adaptive, okA := rows[key{node, withLifecycledAdaptive.key}]
		if okF && okA {
			assert.Less(t, adaptive.rollout, fixed.rollout-4*time.Second,
				"%s node: adaptive rollout %s, fixed %s", node, adaptive.rollout, fixed.rollout)
		}
	}
}

// fillNode is the CPU request that makes n pods fill the node, so that an
// (n+1)th waits for one of them to be gone. It first waits until no other
// pod requests CPU (a previous case's pods may still terminate).
func fillNode(t *testing.T, ctx context.Context, n int) resource.Quantity {
	t.Helper()
	eventually(t, ctx, "no pod requesting CPU on the node", func() bool {
		var list corev1.PodList
		require.NoError(t, getJSON(ctx, &list, "pods", "-A"))
		for _, p := range list.Items {
			for _, c := range p.Spec.Containers {
				if !c.Resources.Requests.Cpu().IsZero() {
					return false
				}
			}
		}
		return true
	})
	var node corev1.Node
	require.NoError(t, getJSON(ctx, &node, "node", cluster.NodeName))
	milli := node.Status.Allocatable.Cpu().MilliValue() / int64(n)
	require.Positive(t, milli)
	return *resource.NewMilliQuantity(milli, resource.DecimalSI)
}
