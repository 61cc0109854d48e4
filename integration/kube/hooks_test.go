//go:build kube

package kube

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// mark is a shell command appending "NAME UPTIME" to /hooks/order: the
// uptime clock (/proc/uptime, 10 ms steps) is the same inside the
// containers and on the host, and busybox's date has no nanoseconds.
func mark(name string) string {
	return fmt.Sprintf(`read up _ < /proc/uptime; echo "%s $up" >> /hooks/order`, name)
}

// uptime is the host's /proc/uptime, as mark records it.
func uptime(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/uptime")
	require.NoError(t, err)
	f, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	require.NoError(t, err)
	return f
}

// marks parses /hooks/order: the first time of each name, and the names in
// the order they were written.
func marks(t *testing.T, s string) (map[string]float64, []string) {
	t.Helper()
	m := map[string]float64{}
	var order []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		require.NoError(t, err, "line %q", l)
		if _, ok := m[f[0]]; !ok {
			m[f[0]] = v
			order = append(order, f[0])
		}
	}
	return m, order
}

func withHooksVolume(p *corev1.Pod, d hostDir) *corev1.Pod {
	p.Spec.Volumes = append(p.Spec.Volumes, d.volume("hooks"))
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].VolumeMounts = append(p.Spec.Containers[i].VolumeMounts, corev1.VolumeMount{Name: "hooks", MountPath: "/hooks"})
	}
	return p
}

// TestHooksWithKubelet runs the kubelet's lifecycle hooks next to
// lifecycled's own and proves, with marks on a hostPath volume (a
// successful hook leaves no event), the order a pod deletion runs them in:
// the kubelet's preStop first, then SIGTERM to lifecycled, its drain, its
// preStop, then the app's SIGTERM. It also proves that
// terminationGracePeriodSeconds is the hard ceiling, at the moment
// `lifecycled explain` says, and that the kubelet's own `preStop: sleep`
// action delays lifecycled's stop sequence by its length.
func TestHooksWithKubelet(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := namespace(t)

	order := newHostDir(t, ns+"-order")
	ordered := withHooksVolume(appPod("order", corev1.RestartPolicyNever,
		"--drain-delay", "1s", "--grace-period", "5s",
		"--post-start", mark("lifecycled-poststart"),
		"--pre-stop", mark("lifecycled-prestop"),
		"--", "sh", "-c", mark("app-start")+`; trap '`+mark("app-term")+`; exit 0' TERM; sleep 600 & wait`), order)
	ordered.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{
		PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", mark("kubelet-poststart")}}},
		PreStop:   &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", mark("kubelet-prestop") + "; sleep 1"}}},
	}

	// The ceiling: lifecycled would SIGKILL at drain 2s + grace 10s = 12s,
	// but the pod allows 3s; the child ignores SIGTERM.
	ceilingArgs := []string{"--drain-delay", "2s", "--grace-period", "10s"}
	ceilingCmd := []string{"--", "sh", "-c", `trap "" TERM; sleep 600`}
	ceiling := appPod("ceiling", corev1.RestartPolicyNever, append(ceilingArgs, ceilingCmd...)...)
	ceiling.Spec.TerminationGracePeriodSeconds = ptr(int64(3))
	// The kubelet kills a pod past its active deadline with the pod's grace
	// period, and keeps its status (a deleted pod's would be gone).
	ceiling.Spec.ActiveDeadlineSeconds = ptr(int64(12))

	slept := newHostDir(t, ns+"-sleep")
	sleep := withHooksVolume(appPod("sleep", corev1.RestartPolicyNever,
		"--pre-stop", mark("lifecycled-prestop"), "--", "sh", "-c", "sleep 600 & wait"), slept)
	sleep.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 2}}}

	applyObjects(t, ctx, ns, ordered, ceiling, sleep)
	for _, name := range []string{"order", "sleep"} {
		eventually(t, ctx, name+" running", func() bool { return podReady(pod(t, ctx, ns, name)) })
	}

	t.Run("order", func(t *testing.T) {
		eventually(t, ctx, "the postStart marks", func() bool {
			m, _ := marks(t, order.read("order"))
			_, a := m["lifecycled-poststart"]
			_, b := m["kubelet-poststart"]
			return a && b
		})
		deleted := uptime(t)
		kubectl(t, ctx, "delete", "pod", "-n", ns, "order", "--wait=true", "--timeout=60s")
		m, seq := marks(t, order.read("order"))
		t.Logf("order: %v (deleted at %.2f): %v", seq, deleted, m)
		// Start: lifecycled's postStart runs right after the child is
		// started, as the kubelet's does: concurrently with the app's own
		// start, so the app's first mark may come a little after the
		// hook's (seen: 10 ms), never long after (the kubelet's own
		// postStart has no order to the start either).
		assert.Less(t, m["app-start"], m["lifecycled-poststart"]+0.5)
		// Stop: the kubelet's preStop (1 s), then SIGTERM to lifecycled:
		// drain 1 s, lifecycled's preStop, then the app's SIGTERM.
		require.Contains(t, m, "kubelet-prestop")
		require.Contains(t, m, "lifecycled-prestop")
		require.Contains(t, m, "app-term")
		assert.GreaterOrEqual(t, m["kubelet-prestop"], deleted-0.05)
		assert.GreaterOrEqual(t, m["lifecycled-prestop"]-m["kubelet-prestop"], 1.9, "kubelet preStop 1s + drain 1s come first")
		assert.GreaterOrEqual(t, m["app-term"], m["lifecycled-prestop"])
		var stop []string
		for _, s := range seq {
			if strings.HasSuffix(s, "-prestop") || s == "app-term" {
				stop = append(stop, s)
			}
		}
		assert.Equal(t, []string{"kubelet-prestop", "lifecycled-prestop", "app-term"}, stop)
	})

	t.Run("ceiling", func(t *testing.T) {
		// What lifecycled explain says of this configuration.
		out, _ := exec.Command(lifecycledBin, append(append([]string{"explain"}, ceilingArgs...),
			append([]string{"--termination-grace-period", "3s"}, ceilingCmd...)...)...).CombinedOutput()
		require.Contains(t, string(out), "(kubelet SIGKILL at 3s)", "%s", out)
		require.Contains(t, string(out), "SIGKILL at 12s", "%s", out)
		require.Contains(t, string(out), "DOES NOT FIT", "%s", out)

		var term *corev1.ContainerStateTerminated
		eventually(t, ctx, "the ceiling pod killed at its deadline", func() bool {
			s, ok := containerStatus(pod(t, ctx, ns, "ceiling"), "app")
			term = s.State.Terminated
			return ok && term != nil
		})
		logs := kubectl(t, ctx, "logs", "-n", ns, "ceiling")
		stopAt := logTime(t, logs, "stop requested")
		termAt := logTime(t, logs, "sending stop signal")
		killedAfter := term.FinishedAt.Time.Sub(stopAt)
		t.Logf("ceiling: SIGTERM to lifecycled at %s, to the child %s later, container ended %s later (exit %d, finishedAt has 1 s steps)",
			stopAt.Format(time.RFC3339Nano), termAt.Sub(stopAt).Round(time.Millisecond), killedAfter.Round(time.Millisecond), term.ExitCode)
		assert.Equal(t, int32(137), term.ExitCode, "the kubelet's SIGKILL")
		assert.InDelta(t, 2.0, termAt.Sub(stopAt).Seconds(), 0.5, "the child's SIGTERM after the 2s drain")
		// At 3 s (explain's "kubelet SIGKILL at 3s"), never at lifecycled's 12 s.
		assert.Greater(t, killedAfter, 1500*time.Millisecond)
		assert.Less(t, killedAfter, 6*time.Second)
		assert.NotContains(t, logs, "grace period over", "lifecycled's own SIGKILL must not have come first")
	})

	t.Run("sleep", func(t *testing.T) {
		deleted := uptime(t)
		kubectl(t, ctx, "delete", "pod", "-n", ns, "sleep", "--wait=true", "--timeout=60s")
		m, _ := marks(t, slept.read("order"))
		require.Contains(t, m, "lifecycled-prestop")
		delay := m["lifecycled-prestop"] - deleted
		t.Logf("sleep: lifecycled's preStop ran %.2fs after the deletion (kubelet preStop sleep 2s first)", delay)
		assert.GreaterOrEqual(t, delay, 1.95)
		assert.Less(t, delay, 5.0)
	})
}

// logTime is the time of the first lifecycled log line whose msg is msg.
func logTime(t *testing.T, logs, msg string) time.Time {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		var e struct {
			Msg string    `json:"msg"`
			TS  time.Time `json:"time"` // the log schema's timestamp key
		}
		if json.Unmarshal([]byte(l), &e) == nil && e.Msg == msg {
			return e.TS
		}
	}
	t.Fatalf("no log line %q in:\n%s", msg, logs)
	return time.Time{}
}
