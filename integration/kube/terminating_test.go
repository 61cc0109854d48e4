//go:build kube

package kube

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/lifecycled/lifecycled/integration/kube/cluster"
)

// TestTerminatingEndpoints measures the readiness-on-SIGTERM question
// (KEP-1669). Kubernetes marks a terminating pod's endpoint not ready by
// itself; lifecycled also fails /readyz, which turns the EndpointSlice
// condition serving=false, and kube-proxy falls back to endpoints that are
// serving and terminating only while serving is true. Two places where
// that matters, with traffic from outside the node (the client namespace)
// to a NodePort with externalTrafficPolicy: Local:
//   - a rolling restart (a new local endpoint is ready before the old one
//     terminates: no fallback is needed; lifecycled must lose nothing);
//   - the last replica scaled 1 -> 0 (every local endpoint terminating:
//     the fallback is all there is; measured and reported side by side
//     with tini + preStop sleep, whose readiness stays up while it sleeps,
//     and with lifecycled --drain-readiness keep, which must be served as
//     long).
func TestTerminatingEndpoints(t *testing.T) {
	ctx := testContext(t, 8*time.Minute)
	type row struct {
		name               string
		rollout, scaleDown loadResult
		servedFor          time.Duration
	}
	var rows []row
	for _, v := range []variant{withLifecycled, withLifecycledKeep, withTiniSleep} {
		t.Run(v.key, func(t *testing.T) {
			ns := namespace(t)
			svc := appService("app", 80, "http")
			svc.Spec.Type = corev1.ServiceTypeNodePort
			svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			applyObjects(t, ctx, ns, svc, appDeployment("app", 1, v))
			var s corev1.Service
			require.NoError(t, getJSON(ctx, &s, "service", "-n", ns, "app"))
			url := fmt.Sprintf("http://%s:%d/", cluster.NodeIP, s.Spec.Ports[0].NodePort)
			client := cluster.NetNSPath(cluster.ClientNetNS)

			kubectl(t, ctx, "rollout", "status", "-n", ns, "deployment/app", "--timeout=3m")
			waitAnswers(t, ctx, client, url, 20)
			r := row{name: v.name}

			// Rolling restart, 1 replica (maxSurge 1, maxUnavailable 0).
			l := startLoad(client, url, 2, 2)
			time.Sleep(2 * time.Second)
			old := pods(t, ctx, ns, "app=app")
			kubectl(t, ctx, "rollout", "restart", "-n", ns, "deployment/app")
			kubectl(t, ctx, "rollout", "status", "-n", ns, "deployment/app", "--timeout=3m")
			waitGone(t, ctx, ns, "app=app", old)
			time.Sleep(time.Second)
			r.rollout = l.Stop()

			// The last replica goes: requests succeed while kube-proxy
			// still routes to it, then fail (nothing serves any more).
			waitAnswers(t, ctx, client, url, 20)
			old = pods(t, ctx, ns, "app=app")
			l = startLoad(client, url, 2, 2)
			time.Sleep(2 * time.Second)
			before := l.ok.Load()
			scaled := time.Now()
			kubectl(t, ctx, "scale", "-n", ns, "deployment/app", "--replicas=0")
			waitGone(t, ctx, ns, "app=app", old)
			r.scaleDown = l.Stop()
			r.servedFor = time.Since(scaled) // nothing failed: served to the end
			if !r.scaleDown.FirstFail.IsZero() {
				r.servedFor = r.scaleDown.FirstFail.Sub(scaled)
			}
			t.Logf("%s: rollout %s; scale 1->0: %d ok after the scale, first failure %s after it",
				v.name, r.rollout, r.scaleDown.OK-before, r.servedFor.Round(100*time.Millisecond))
			rows = append(rows, r)
			if v.expectZero {
				assert.Zero(t, r.rollout.Failed, "NodePort (externalTrafficPolicy: Local) rollout: %s", r.rollout)
			}
			assert.Greater(t, r.rollout.OK, int64(100))
			if v.key == withLifecycledKeep.key {
				// Served through most of the 5 s drain delay, as tini +
				// preStop sleep is; failing readiness (the default)
				// measured 1.5-2.2 s here.
				assert.GreaterOrEqual(t, r.servedFor, 3*time.Second, "the last replica with --drain-readiness keep")
			}
		})
	}
	var b strings.Builder
	b.WriteString("\n| wrapper | rollout (eTP Local NodePort): failed/requests | scale 1->0: served after the scale for | failed |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d/%d | %.1f s | %d |\n", r.name, r.rollout.Failed, r.rollout.OK+r.rollout.Failed, r.servedFor.Seconds(), r.scaleDown.Failed)
	}
	t.Log(b.String())
}

// waitGone waits until none of the pods in old exists any more.
func waitGone(t *testing.T, ctx context.Context, ns, selector string, old []corev1.Pod) {
	t.Helper()
	names := map[string]bool{}
	for _, p := range old {
		names[p.Name] = true
	}
	eventually(t, ctx, "the old pods to be gone", func() bool {
		for _, p := range pods(t, ctx, ns, selector) {
			if names[p.Name] {
				return false
			}
		}
		return true
	})
}
