//go:build kube

package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lifecycled/lifecycled/integration/kube/cluster"
)

// appPod is a bare pod of the test app image running lifecycled with
// args, labelled for dumpNamespace.
func appPod(name string, restart corev1.RestartPolicy, args ...string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"lifecycled-test": "true"}},
		Spec: corev1.PodSpec{
			RestartPolicy:                 restart,
			TerminationGracePeriodSeconds: ptr(int64(30)),
			Containers: []corev1.Container{{
				Name:            "app",
				Image:           cluster.AppImage,
				ImagePullPolicy: corev1.PullNever,
				Args:            args,
			}},
		},
	}
}

// TestTerminationMessage: with --termination-log /dev/termination-log
// (the kubelet's default terminationMessagePath), why the container ended
// shows in the pod's status, as `kubectl describe` and
// `.status.containerStatuses[0].state.terminated.message` show it: for a
// clean exit, a crash, a SIGKILL after lifecycled's grace period, a
// postStart failure, and in lastState after a restart.
func TestTerminationMessage(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	ns := namespace(t)
	tl := []string{"--termination-log", "/dev/termination-log"}
	cases := []struct {
		name    string
		restart corev1.RestartPolicy
		args    []string
		// kill: once running, SIGTERM lifecycled (PID 1) with kubectl exec.
		kill     bool
		exitCode int32
		message  []string
	}{
		{name: "clean", restart: corev1.RestartPolicyNever, args: append(tl, "--", "sh", "-c", "echo done"),
			exitCode: 0, message: []string{"child exited with code 0", "exited by itself"}},
		{name: "crash", restart: corev1.RestartPolicyNever, args: append(tl, "--", "sh", "-c", "exit 3"),
			exitCode: 3, message: []string{"child exited with code 3"}},
		{name: "sigkill", restart: corev1.RestartPolicyNever, kill: true,
			args:     append(tl, "--grace-period", "1s", "--", "sh", "-c", `trap "" TERM; sleep 600`),
			exitCode: 137, message: []string{"child killed by SIGKILL", "received SIGTERM", "SIGKILL after the 1s grace period"}},
		{name: "poststart", restart: corev1.RestartPolicyNever, args: append(tl, "--post-start", "exit 4", "--", "sleep", "600"),
			exitCode: 125, message: []string{"postStart hook failed", "exit code 4"}},
		{name: "restarted", restart: corev1.RestartPolicyOnFailure, args: append(tl, "--", "sh", "-c", "sleep 1; exit 5"),
			exitCode: 5, message: []string{"child exited with code 5"}},
	}
	for _, c := range cases {
		applyObjects(t, ctx, ns, appPod(c.name, c.restart, c.args...))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.kill {
				eventually(t, ctx, c.name+" running", func() bool {
					s, ok := containerStatus(pod(t, ctx, ns, c.name), "app")
					return ok && s.State.Running != nil
				})
				kubectl(t, ctx, "exec", "-n", ns, c.name, "--", "kill", "-TERM", "1")
			}
			var term *corev1.ContainerStateTerminated
			eventually(t, ctx, c.name+" terminated", func() bool {
				s, ok := containerStatus(pod(t, ctx, ns, c.name), "app")
				if !ok {
					return false
				}
				if c.restart == corev1.RestartPolicyNever {
					term = s.State.Terminated
				} else {
					term = s.LastTerminationState.Terminated
				}
				return term != nil
			})
			require.NotNil(t, term)
			t.Logf("%s: exit code %d, reason %s, message %q", c.name, term.ExitCode, term.Reason, term.Message)
			assert.Equal(t, c.exitCode, term.ExitCode)
			for _, m := range c.message {
				assert.Contains(t, term.Message, m)
			}
		})
	}
}
