package podspec

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKubeletMessageLimit: the kubelet reads the last 4096 bytes of a
// termination message file, then keeps the first 12288 ÷ (containers +
// init containers) of each message (issue 17).
func TestKubeletMessageLimit(t *testing.T) {
	for _, tt := range []struct{ apps, inits, want int }{
		{0, 0, 4096}, {1, 0, 4096}, {3, 0, 4096}, {2, 1, 4096},
		{4, 0, 3072}, {3, 1, 3072}, {4, 1, 2457}, {12, 0, 1024},
	} {
		spec := &PodSpec{Containers: make([]Container, tt.apps), InitContainers: make([]Container, tt.inits)}
		assert.Equal(t, tt.want, kubeletMessageLimit(spec), "%d containers, %d init containers", tt.apps, tt.inits)
	}
}

// TestCheckPodTraps: the checks that depend on the pod as a whole, with
// lifecycled's settings read from its arguments as run reads them.
func TestCheckPodTraps(t *testing.T) {
	lc := func(args ...string) Container {
		return Container{Name: "app", Command: append(append([]string{"lifecycled"}, args...), "--", "app")}
	}
	other := func(name string) Container { return Container{Name: name, Image: name} }
	tests := []struct {
		name string
		spec PodSpec
		args []string // lifecycled's
		want []string // substrings of the one problem, none: no problem
	}{
		{name: "tail in a pod of 4", spec: PodSpec{Containers: []Container{{Name: "LC"}, other("a"), other("b"), other("c")}},
			args: []string{"--termination-log", "/dev/termination-log", "--termination-log-tail", "--termination-log-max", "4096"},
			want: []string{"--termination-log-max 4096, but in a pod of 4 containers and init containers the kubelet keeps only the first 3072 bytes", "give --termination-log-max 3072"}},
		{name: "tail in a pod of 4 counting an init container", spec: PodSpec{InitContainers: []Container{other("init")}, Containers: []Container{{Name: "LC"}, other("a"), other("b")}},
			args: []string{"--termination-log", "/dev/termination-log", "--termination-log-tail", "--termination-log-max", "4096"},
			want: []string{"give --termination-log-max 3072"}},
		{name: "tail set to fit", spec: PodSpec{Containers: []Container{{Name: "LC"}, other("a"), other("b"), other("c")}},
			args: []string{"--termination-log", "/dev/termination-log", "--termination-log-tail", "--termination-log-max", "3072"}},
		{name: "no tail: the reason is kept", spec: PodSpec{Containers: []Container{{Name: "LC"}, other("a"), other("b"), other("c")}},
			args: []string{"--termination-log", "/dev/termination-log", "--termination-log-max", "4096"}},
		{name: "tail in a pod of 3", spec: PodSpec{Containers: []Container{{Name: "LC"}, other("a"), other("b")}},
			args: []string{"--termination-log", "/dev/termination-log", "--termination-log-tail", "--termination-log-max", "4096"}},
		{name: "exit-with retried on failure", spec: PodSpec{RestartPolicy: "OnFailure", Containers: []Container{{Name: "LC"}}},
			args: []string{"--tombstone-dir", "/t", "--exit-with", "main"},
			want: []string{"--exit-with in a pod with restartPolicy OnFailure: when main fails", "native sidecar instead: an init container with restartPolicy: Always"}},
		{name: "exit-with, restartPolicy Never", spec: PodSpec{RestartPolicy: "Never", Containers: []Container{{Name: "LC"}}},
			args: []string{"--tombstone-dir", "/t", "--exit-with", "main"}},
		{name: "OnFailure without exit-with", spec: PodSpec{RestartPolicy: "OnFailure", Containers: []Container{{Name: "LC"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			spec.Containers = slices.Clone(spec.Containers)
			for i := range spec.Containers {
				if spec.Containers[i].Name == "LC" {
					spec.Containers[i] = lc(tt.args...)
				}
			}
			w := &Workload{Kind: "Pod", Name: "p", Spec: spec}
			r := Check(w, nil)
			var got []string
			for _, p := range r.Problems {
				// The tombstone checks are not the subject here.
				if !strings.Contains(p.Text, "tombstone") {
					got = append(got, p.Text)
				}
			}
			if len(tt.want) == 0 {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1, "%q", got)
			for _, w := range tt.want {
				assert.Contains(t, got[0], w)
			}
		})
	}
}
